import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/** Threads: subclasses and Runnables (lambdas), join, synchronized, atomics; each thread's work is
 * independent of scheduling, so the output is the JVM's whatever the order. */
public class Threads {
    static int total;

    static synchronized void add(int n) { total += n; }

    static class Summer extends Thread {
        final int from, to;
        long sum;
        Summer(int from, int to) { this.from = from; this.to = to; }
        @Override public void run() { for (int i = from; i < to; i++) sum += i; add(1); }
    }

    public static void main(String[] args) throws InterruptedException {
        List<Summer> workers = new ArrayList<>();
        for (int k = 0; k < 4; k++) workers.add(new Summer(k * 250, (k + 1) * 250));
        for (Summer s : workers) s.start();
        long sum = 0;
        for (Summer s : workers) { s.join(); sum += s.sum; }
        System.out.println("sum " + sum + " threads done " + total);
        AtomicInteger counter = new AtomicInteger();
        Object lock = new Object();
        int[] shared = new int[1];
        Thread[] ts = new Thread[3];
        for (int k = 0; k < ts.length; k++) {
            ts[k] = new Thread(() -> {
                for (int i = 0; i < 100; i++) {
                    counter.incrementAndGet();
                    synchronized (lock) { shared[0]++; }
                }
            }, "worker-" + k);
        }
        for (Thread t : ts) t.start();
        for (Thread t : ts) t.join();
        System.out.println("counter " + counter.get() + " shared " + shared[0] + " name " + ts[2].getName());
        System.out.println("main is " + Thread.currentThread().getName());
    }
}
