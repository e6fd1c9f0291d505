import java.lang.reflect.Method;

/** Reflection: Class.forName, getMethod, invoke, newInstance, class names. */
public class Refl {
    public static class Greeter {
        public Greeter() {}
        public String greet(String who) { return "hello " + who; }
        public static int twice(int x) { return 2 * x; }
        @Override public String toString() { return "Greeter!"; }
    }

    public static void main(String[] args) throws Exception {
        Class<?> cls = Class.forName("Refl$Greeter");
        System.out.println(cls.getName() + " " + cls.getSimpleName() + " " + cls);
        Object g = cls.getDeclaredConstructor().newInstance();
        Method greet = cls.getMethod("greet", String.class);
        System.out.println(greet.getName() + " -> " + greet.invoke(g, "reflection"));
        Method twice = cls.getMethod("twice", int.class);
        System.out.println("twice " + twice.invoke(null, 21) + " params " + twice.getParameterCount());
        System.out.println(g + " " + g.getClass().getName() + " " + (g.getClass() == cls) + " " + "s".getClass().getName());
        try {
            Class.forName("no.such.Clazz");
        } catch (ClassNotFoundException e) {
            System.out.println("missing " + e.getMessage());
        }
        try {
            cls.getMethod("absent");
        } catch (NoSuchMethodException e) {
            System.out.println("no method " + e.getMessage());
        }
        Object arr = new int[3];
        System.out.println((arr instanceof int[]) + " " + (g instanceof Greeter) + " " + (g instanceof Runnable));
    }
}
