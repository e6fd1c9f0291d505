import java.util.HashSet;
import java.util.Set;

/** Records (toString, equals, hashCode from java.lang.runtime.ObjectMethods), and a class whose static
 * initialiser throws: ExceptionInInitializerError, then NoClassDefFoundError on the next use. */
public class Records {
    record Point(int x, int y) {
        Point {
            if (x < 0) throw new IllegalArgumentException("negative x " + x);
        }
        double length() { return Math.sqrt(x * x + y * y); }
    }

    record Named(String name, long id, double score, boolean on, char grade, Point at) {}

    static class Broken {
        static final int VALUE = Integer.parseInt("not a number");
    }

    public static void main(String[] args) {
        Point p = new Point(3, 4);
        Point q = new Point(3, 4);
        System.out.println(p + " " + p.x() + " " + p.length() + " " + p.equals(q) + " " + (p == q) + " " + (p.hashCode() == q.hashCode()));
        System.out.println(p.hashCode() + " " + new Point(0, 0).hashCode() + " " + p.equals(new Point(4, 3)) + " " + p.equals(null) + " " + p.equals("x"));
        Named n = new Named("ann", 1L << 35, 2.5, true, 'A', p);
        Named m = new Named(null, 7, -0.0, false, 'b', null);
        System.out.println(n + " " + n.hashCode());
        System.out.println(m + " " + m.hashCode() + " " + m.equals(new Named(null, 7, -0.0, false, 'b', null)));
        Set<Point> set = new HashSet<>();
        set.add(p); set.add(q); set.add(new Point(1, 1));
        System.out.println("set size " + set.size() + " contains " + set.contains(new Point(1, 1)));
        try {
            new Point(-1, 0);
        } catch (IllegalArgumentException e) {
            System.out.println("compact constructor: " + e.getMessage());
        }
        try {
            System.out.println(Broken.VALUE);
        } catch (ExceptionInInitializerError e) {
            System.out.println("init failed: " + e.getCause());
        }
        try {
            System.out.println(Broken.VALUE);
        } catch (NoClassDefFoundError e) {
            System.out.println("then: " + e.getMessage());
        }
    }
}
