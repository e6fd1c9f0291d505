import java.util.Arrays;

/** Arrays know their element type: getClass().getName()/getSimpleName(), instanceof and casts with
 * Java's covariance, ClassCastException messages, Arrays.deepToString with primitive arrays inside,
 * and the runtime type kept by clone/copyOf and arrays the library returns. */
public class ArrayTypes {
    static class Shape { }
    static class Circle extends Shape { }

    static String kind(Object o) {
        if (o instanceof int[]) return "int[]";
        if (o instanceof String[]) return "String[]";
        if (o instanceof Shape[]) return "Shape[]";
        if (o instanceof Object[][]) return "Object[][]";
        if (o instanceof Object[]) return "Object[]";
        return "other";
    }

    public static void main(String[] args) {
        Object[] samples = {new int[2], new long[1], new double[0], new boolean[1], new char[1], new byte[1],
                            new String[1], new Object[1], new int[2][3], new Circle[1], new Shape[0][0], args,
                            "a,b".split(","), "xy".toCharArray(), new String[] {"q"}.clone(),
                            Arrays.copyOf(new Circle[1], 3), new java.util.ArrayList<String>().toArray()};
        for (Object o : samples) {
            Class<?> c = o.getClass();
            System.out.println(c.getName() + " " + c.getSimpleName() + " " + c.isArray() + " " + kind(o)
                               + " " + (o instanceof Cloneable) + " " + (o instanceof java.io.Serializable));
        }
        System.out.println(int.class.getName() + " " + String.class.getName() + " " + int[].class + " "
                           + String[].class);
        Object circles = new Circle[] {new Circle()};
        Shape[] shapes = (Shape[]) circles;
        System.out.println("Circle[] as Shape[]: " + shapes.length);
        for (Object bad : new Object[] {new int[1], new Shape[1], new Object[1]}) {
            try {
                Circle[] cs = (Circle[]) bad;
                System.out.println("cast " + cs.length);
            } catch (ClassCastException e) {
                System.out.println(e.getMessage());
            }
        }
        try {
            String[] s = (String[]) (Object) new int[0][0];
            System.out.println(s.length);
        } catch (ClassCastException e) {
            System.out.println(e.getMessage());
        }
        Object[] nested = {new int[] {1, 2}, new double[] {0.5, -0.0}, new String[] {"a", null},
                           new Object[] {new char[] {'x', 'y'}, new long[] {3L}}, null, 7, new boolean[] {true}};
        System.out.println(Arrays.deepToString(nested));
        Object[] self = new Object[2];
        self[0] = self;
        self[1] = "end";
        System.out.println(Arrays.deepToString(self));
        int[][] grid = new int[2][3];
        grid[1][2] = 9;
        System.out.println(Arrays.deepToString(grid) + " " + Arrays.deepToString(new float[][] {{1.5f}, {}}));
        System.out.println(Arrays.toString(args) + " " + Arrays.deepToString(null));
    }
}
