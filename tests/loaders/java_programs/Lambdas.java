import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.*;

/** Lambdas and method references (static, bound, unbound, constructor), captured values, boxing
 * between functional interfaces and implementations, custom functional interfaces. */
public class Lambdas {
    @FunctionalInterface
    interface TriFunction<A, B, C, R> { R apply(A a, B b, C c); }

    interface Counter { long count(long start, int step); }

    static int square(int x) { return x * x; }

    final String prefix;

    Lambdas(String prefix) { this.prefix = prefix; }

    String tag(String s) { return prefix + s; }

    public static void main(String[] args) {
        int base = 10;
        Function<Integer, Integer> addBase = x -> x + base;
        BiFunction<Integer, Integer, Integer> mul = (a, b) -> a * b;
        Supplier<String> hello = () -> "hi";
        Predicate<String> empty = String::isEmpty;
        UnaryOperator<String> upper = String::toUpperCase;
        Function<Integer, Integer> sq = Lambdas::square;
        IntBinaryOperator max = Math::max;
        ToIntFunction<String> len = String::length;
        IntFunction<int[]> mk = int[]::new;
        Lambdas l = new Lambdas("#");
        Function<String, String> tagger = l::tag;
        Function<String, Lambdas> ctor = Lambdas::new;
        Supplier<List<String>> listMaker = ArrayList::new;
        TriFunction<Integer, Long, Double, String> tri = (a, b, c) -> a + "/" + b + "/" + c;
        Counter counter = (start, step) -> start + 3L * step;
        BinaryOperator<Long> sum = Long::sum;
        DoubleUnaryOperator half = d -> d / 2;
        Consumer<String> printer = System.out::println;
        System.out.println(addBase.apply(5) + " " + mul.apply(6, 7) + " " + hello.get() + " " + empty.test("") + " " + upper.apply("up"));
        System.out.println(sq.apply(9) + " " + max.applyAsInt(3, 8) + " " + len.applyAsInt("four") + " " + mk.apply(4).length + " " + tagger.apply("x"));
        System.out.println(ctor.apply("!").tag("y") + " " + listMaker.get().size() + " " + tri.apply(1, 2L, 3.5) + " " + counter.count(1L << 33, 2));
        System.out.println(sum.apply(5L, 6L) + " " + half.applyAsDouble(5));
        printer.accept("consumer says hi");
        List<Runnable> tasks = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            final int n = i;
            tasks.add(() -> System.out.println("task " + n + " of " + base));
        }
        for (Runnable r : tasks) r.run();
        List<String> words = new ArrayList<>(Arrays.asList("delta", "alpha", "charlie", "bravo"));
        words.sort((a, b) -> b.compareTo(a));
        System.out.println(words);
        words.sort(String::compareTo);
        System.out.println(words);
        Function<Integer, Function<Integer, Integer>> adder = a -> b -> a + b;
        System.out.println("curried " + adder.apply(3).apply(4));
        Runnable nested = () -> {
            Supplier<String> inner = () -> "inner " + l.prefix;
            System.out.println(inner.get());
        };
        nested.run();
        Object o = (Runnable & java.io.Serializable) () -> System.out.println("serializable lambda");
        ((Runnable) o).run();
    }
}
