import java.util.*;
import java.util.concurrent.CopyOnWriteArrayList;

/** Collections: lists, maps (hash, linked, tree), sets, iteration, sorting with lambdas and comparators. */
public class Colls {
    public static void main(String[] args) {
        List<String> names = new ArrayList<>(Arrays.asList("pear", "fig", "apple", "kiwi"));
        names.add("banana");
        names.add(0, "cherry");
        names.remove("fig");
        Collections.sort(names);
        System.out.println(names + " size=" + names.size() + " first=" + names.get(0));
        names.sort((a, b) -> a.length() != b.length() ? a.length() - b.length() : a.compareTo(b));
        System.out.println("by length " + names);
        Map<String, Integer> counts = new HashMap<>();
        for (String w : "the cat and the hat and the bat".split(" ")) {
            counts.merge(w, 1, Integer::sum);
        }
        Map<String, Integer> sorted = new TreeMap<>(counts);
        System.out.println(sorted + " the=" + counts.get("the") + " dog=" + counts.getOrDefault("dog", 0));
        Map<String, List<Integer>> order = new LinkedHashMap<>();
        for (int i = 0; i < 6; i++) {
            String key = i % 3 == 0 ? "zero" : i % 3 == 1 ? "one" : "two";
            if (!order.containsKey(key)) order.put(key, new ArrayList<>());
            order.get(key).add(i);
        }
        for (Map.Entry<String, List<Integer>> e : order.entrySet()) {
            System.out.println(e.getKey() + " -> " + e.getValue());
        }
        Set<Integer> seen = new TreeSet<>();
        Set<Integer> linked = new LinkedHashSet<>();
        int[] data = {5, 3, 9, 3, 1, 5, 7};
        for (int d : data) { seen.add(d); linked.add(d); }
        System.out.println(seen + " " + linked + " has 9: " + seen.contains(9));
        List<Integer> cow = new CopyOnWriteArrayList<>();
        for (int i = 1; i <= 5; i++) cow.add(i * 10);
        for (Integer x : cow) { if (x == 30) cow.add(99); }
        System.out.println("cow " + cow);
        Deque<Integer> stack = new LinkedList<>();
        stack.addFirst(1); stack.addFirst(2); stack.addLast(3);
        System.out.println("deque " + stack + " " + stack.removeFirst() + " " + stack.removeLast());
        Iterator<String> it = names.iterator();
        while (it.hasNext()) { if (it.next().startsWith("b")) it.remove(); }
        System.out.println("no b: " + names);
        int[] arr = {9, 2, 7, 4};
        Arrays.sort(arr);
        System.out.println(Arrays.toString(arr) + " max " + Collections.max(Arrays.asList(4, 8, 1)));
        StringBuilder sb = new StringBuilder();
        names.forEach(n -> sb.append(n.charAt(0)));
        System.out.println("initials " + sb);
    }
}
