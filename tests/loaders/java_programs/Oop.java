import java.util.ArrayList;
import java.util.List;

/** Classes: interfaces with default and static methods, abstract classes, inner, anonymous and local
 * classes, enums with fields and switches, initialisation order, super calls, generics, 2-D arrays. */
public class Oop {
    static final StringBuilder LOG = new StringBuilder();
    static int created;

    static { LOG.append("Oop.clinit;"); }

    interface Shape {
        double area();
        default String describe() { return name() + " of area " + String.format("%.2f", area()); }
        String name();
        static Shape unit() { return new Square(1); }
    }

    abstract static class Base implements Shape {
        static { LOG.append("Base.clinit;"); }
        { created++; }
        public String name() { return getClass().getSimpleName().toLowerCase(); }
        @Override public String toString() { return "<" + describe() + ">"; }
    }

    static class Square extends Base {
        static { LOG.append("Square.clinit;"); }
        final double side;
        Square(double side) { this.side = side; }
        public double area() { return side * side; }
    }

    static class Circle extends Base {
        final double r;
        Circle(double r) { this.r = r; }
        public double area() { return Math.PI * r * r; }
        @Override public String name() { return "round " + super.name(); }
    }

    enum Planet {
        MERCURY(3.303e+23, 2.4397e6), EARTH(5.976e+24, 6.37814e6);
        final double mass, radius;
        Planet(double mass, double radius) { this.mass = mass; this.radius = radius; }
        double gravity() { return 6.67300E-11 * mass / (radius * radius); }
    }

    enum Op {
        ADD { int apply(int a, int b) { return a + b; } },
        MUL { int apply(int a, int b) { return a * b; } };
        abstract int apply(int a, int b);
    }

    class Counter {  // an inner class: sees the outer instance's fields
        int next() { return ++count; }
    }

    int count = 100;

    static class Box<T extends Comparable<T>> {
        private final List<T> items = new ArrayList<>();
        void add(T t) { items.add(t); }
        T max() {
            T best = items.get(0);
            for (T t : items) if (t.compareTo(best) > 0) best = t;
            return best;
        }
    }

    public static void main(String[] args) {
        LOG.append("main;");
        List<Shape> shapes = new ArrayList<>();
        shapes.add(new Square(2));
        shapes.add(new Circle(1.5));
        shapes.add(Shape.unit());
        shapes.add(new Shape() {
            public double area() { return 0.5; }
            public String name() { return "anonymous"; }
        });
        for (Shape s : shapes) System.out.println(s.describe() + " | " + (s instanceof Base ? s.toString() : "not base"));
        System.out.println(LOG + " created " + created);
        for (Planet p : Planet.values()) System.out.println(p + " " + p.ordinal() + " " + String.format("%.2f", p.gravity()));
        System.out.println(Planet.valueOf("EARTH").name() + " " + Op.ADD.apply(3, 4) + " " + Op.MUL.apply(3, 4) + " " + Op.MUL.compareTo(Op.ADD));
        for (Op op : Op.values()) {
            switch (op) {
                case ADD -> System.out.println("switch add");
                case MUL -> System.out.println("switch mul");
            }
        }
        Oop outer = new Oop();
        Oop.Counter c = outer.new Counter();
        c.next();
        System.out.println("inner " + c.next() + " outer count " + outer.count);
        class Local { String hi() { return "local " + args.length; } }
        System.out.println(new Local().hi());
        Box<String> box = new Box<>();
        box.add("pear"); box.add("zebra"); box.add("apple");
        System.out.println("max " + box.max());
        long[][] table = new long[3][];
        for (int i = 0; i < 3; i++) {
            table[i] = new long[i + 1];
            for (int j = 0; j <= i; j++) table[i][j] = (j == 0 || j == i) ? 1 : table[i - 1][j - 1] + table[i - 1][j];
        }
        System.out.println(table[2][1] + " " + table.length + " " + table[2].length);
        char[][][] cube = new char[2][3][4];
        cube[1][2][3] = 'z';
        System.out.println(cube[1][2][3] + "" + (int) cube[0][0][0] + cube[1].length + cube[1][2].length);
        int day = 3;
        String kind = switch (day) { case 1, 7 -> "weekend"; case 2, 3, 4, 5, 6 -> "weekday"; default -> "?"; };
        int code = switch ("beta") { case "alpha" -> 1; case "beta" -> 2; default -> 0; };
        System.out.println(kind + " " + code);
        int sparse = 1000;
        switch (sparse) { case 1: System.out.println("one"); break; case 1000: System.out.println("thousand"); break; case 99999: System.out.println("big"); break; default: break; }
    }
}
