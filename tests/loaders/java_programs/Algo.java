import java.util.*;

/** Classic algorithms: sorting, searching, a sieve, BFS on a grid, dynamic programming, a priority
 * queue (Dijkstra), bit tricks, StringBuilder-heavy text work and a 2-D matrix product. */
public class Algo {
    static void quickSort(int[] a, int lo, int hi) {
        if (lo >= hi) return;
        int p = a[(lo + hi) >>> 1], i = lo, j = hi;
        while (i <= j) {
            while (a[i] < p) i++;
            while (a[j] > p) j--;
            if (i <= j) { int t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
        }
        quickSort(a, lo, j);
        quickSort(a, i, hi);
    }

    static long lcs(String x, String y) {
        long[][] dp = new long[x.length() + 1][y.length() + 1];
        for (int i = 1; i <= x.length(); i++)
            for (int j = 1; j <= y.length(); j++)
                dp[i][j] = x.charAt(i - 1) == y.charAt(j - 1) ? dp[i - 1][j - 1] + 1 : Math.max(dp[i - 1][j], dp[i][j - 1]);
        return dp[x.length()][y.length()];
    }

    public static void main(String[] args) {
        Random rnd = new Random(42);
        int[] a = new int[200];
        for (int i = 0; i < a.length; i++) a[i] = rnd.nextInt(1000) - 500;
        int[] b = a.clone();
        quickSort(a, 0, a.length - 1);
        Arrays.sort(b);
        System.out.println("sorted equal " + Arrays.equals(a, b) + " min " + a[0] + " max " + a[a.length - 1] + " idx " + Arrays.binarySearch(a, a[17]));
        boolean[] composite = new boolean[1000];
        int primes = 0;
        for (int i = 2; i < 1000; i++) {
            if (composite[i]) continue;
            primes++;
            for (int j = i * i; j < 1000; j += i) composite[j] = true;
        }
        System.out.println("primes below 1000: " + primes);
        String[] grid = {"..#....", ".##.##.", "...#...", "#.#..#.", "...#..."};
        int[][] dist = new int[grid.length][grid[0].length()];
        for (int[] row : dist) Arrays.fill(row, -1);
        Deque<int[]> queue = new ArrayDeque<>();
        queue.add(new int[] {0, 0});
        dist[0][0] = 0;
        int[][] moves = {{1, 0}, {-1, 0}, {0, 1}, {0, -1}};
        while (!queue.isEmpty()) {
            int[] cur = queue.poll();
            for (int[] m : moves) {
                int r = cur[0] + m[0], c = cur[1] + m[1];
                if (r >= 0 && r < grid.length && c >= 0 && c < grid[0].length() && grid[r].charAt(c) == '.' && dist[r][c] < 0) {
                    dist[r][c] = dist[cur[0]][cur[1]] + 1;
                    queue.add(new int[] {r, c});
                }
            }
        }
        System.out.println("bfs distance " + dist[4][6]);
        System.out.println("lcs " + lcs("AGGTABQWERTY", "GXTXAYBWRT"));
        PriorityQueue<long[]> pq = new PriorityQueue<>((p, q) -> Long.compare(p[0], q[0]));
        long[][] edges = {{0, 1, 4}, {0, 2, 1}, {2, 1, 2}, {1, 3, 1}, {2, 3, 5}, {3, 4, 3}};
        long[] best = new long[5];
        Arrays.fill(best, Long.MAX_VALUE);
        best[0] = 0;
        pq.add(new long[] {0, 0});
        while (!pq.isEmpty()) {
            long[] top = pq.poll();
            int u = (int) top[1];
            if (top[0] > best[u]) continue;
            for (long[] e : edges) {
                if (e[0] == u && best[u] + e[2] < best[(int) e[1]]) {
                    best[(int) e[1]] = best[u] + e[2];
                    pq.add(new long[] {best[(int) e[1]], e[1]});
                }
            }
        }
        System.out.println("dijkstra " + Arrays.toString(best));
        PriorityQueue<Integer> heap = new PriorityQueue<>(List.of(5, 1, 4, 2, 3));
        StringBuilder order = new StringBuilder();
        while (!heap.isEmpty()) order.append(heap.poll());
        System.out.println("heap order " + order + " " + Integer.bitCount(0xF0F0) + " " + Long.numberOfTrailingZeros(64) + " " + Integer.highestOneBit(100) + " " + Integer.reverse(1) + " " + Integer.MAX_VALUE / -1);
        double[][] m1 = {{1, 2}, {3, 4}}, m2 = {{5, 6}, {7, 8}};
        double[][] prod = new double[2][2];
        for (int i = 0; i < 2; i++) for (int j = 0; j < 2; j++) for (int k = 0; k < 2; k++) prod[i][j] += m1[i][k] * m2[k][j];
        for (double[] row : prod) System.out.println(Arrays.toString(row));
        StringBuilder text = new StringBuilder();
        for (String w : "the quick brown fox jumps over the lazy dog".split(" ")) text.insert(0, w + " ");
        System.out.println(text.toString().trim() + " | " + String.valueOf(text.length()));
        Map<Character, Integer> freq = new TreeMap<>();
        for (char ch : "mississippi".toCharArray()) freq.put(ch, freq.getOrDefault(ch, 0) + 1);
        System.out.println(freq);
    }
}
