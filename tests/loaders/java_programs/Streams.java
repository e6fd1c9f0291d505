import java.util.*;
import java.util.stream.*;

/** Streams: from collections, arrays, ranges and strings; map/filter/sorted/distinct/limit; collectors;
 * primitive streams with sum/average/min/max; Optional. */
public class Streams {
    record City(String name, String country, int people) {}

    public static void main(String[] args) {
        List<String> words = Arrays.asList("delta", "alpha", "charlie", "bravo", "alpha", "echo");
        System.out.println(words.stream().filter(w -> w.length() == 5).map(String::toUpperCase).collect(Collectors.toList()));
        System.out.println(words.stream().distinct().sorted().collect(Collectors.joining(", ", "[", "]")));
        System.out.println(words.stream().sorted(Comparator.naturalOrder()).limit(3).toList());
        System.out.println(words.stream().mapToInt(String::length).sum() + " " + words.stream().count());
        System.out.println(IntStream.range(0, 10).filter(i -> i % 3 == 0).boxed().collect(Collectors.toList()));
        System.out.println(IntStream.rangeClosed(1, 5).map(i -> i * i).sum() + " " + IntStream.of(4, 9, 2).max().getAsInt());
        System.out.println(IntStream.range(0, 4).average().getAsDouble() + " " + IntStream.empty().max().isPresent());
        int[] nums = {5, 3, 8, 1};
        System.out.println(Arrays.stream(nums).map(n -> n * 2).boxed().map(String::valueOf).collect(Collectors.joining("-")));
        System.out.println(Arrays.stream(new double[] {1.5, 2.5}).sum() + " " + "hello".chars().filter(c -> c == 'l').count());
        Optional<String> first = words.stream().filter(w -> w.startsWith("c")).findFirst();
        System.out.println(first.isPresent() + " " + first.get() + " " + first + " " + words.stream().filter(w -> w.isEmpty()).findFirst());
        System.out.println(words.stream().anyMatch(w -> w.equals("echo")) + " " + words.stream().allMatch(w -> w.length() > 3) + " " + words.stream().noneMatch(String::isEmpty));
        System.out.println(words.stream().reduce("", (a, b) -> a + b.charAt(0)) + " " + Stream.of(1, 2, 3, 4).reduce(Integer::sum).get());
        List<City> cities = List.of(new City("Lyon", "FR", 513), new City("Paris", "FR", 2161), new City("Bonn", "DE", 327), new City("Berlin", "DE", 3645));
        Map<String, List<String>> byCountry = cities.stream().collect(Collectors.groupingBy(City::country, TreeMap::new, Collectors.mapping(City::name, Collectors.toList())));
        System.out.println(byCountry);
        System.out.println(cities.stream().max(Comparator.comparingInt(City::people)).get().name());
        System.out.println(cities.stream().map(City::name).sorted(Comparator.comparing(String::length).thenComparing(Comparator.reverseOrder())).toList());
    }
}
