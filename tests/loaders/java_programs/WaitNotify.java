import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/** wait/notify between threads: a bounded buffer with producers and consumers, a latch made of
 * wait/notifyAll, sleep and join with timeouts, and the JVM's IllegalMonitorStateException. What is
 * printed does not depend on the schedule, so it is the JVM's under any. */
public class WaitNotify {
    static class Buffer {
        private final ArrayDeque<Integer> items = new ArrayDeque<>();
        private final int capacity;
        int maxSeen;
        Buffer(int capacity) { this.capacity = capacity; }

        synchronized void put(int x) throws InterruptedException {
            while (items.size() == capacity) wait();
            items.addLast(x);
            maxSeen = Math.max(maxSeen, items.size());
            notifyAll();
        }

        synchronized int take() throws InterruptedException {
            while (items.isEmpty()) wait();
            int x = items.removeFirst();
            notifyAll();
            return x;
        }
    }

    static class Latch {
        private int count;
        Latch(int count) { this.count = count; }
        void countDown() { synchronized (this) { if (--count == 0) notifyAll(); } }
        void await() throws InterruptedException { synchronized (this) { while (count > 0) wait(); } }
    }

    static boolean released;

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("exit")) { // System.exit in a thread ends every thread
            Object lock = new Object();
            Thread t = new Thread(() -> {
                synchronized (lock) {
                    while (!released) {
                        try { lock.wait(); } catch (InterruptedException e) { throw new RuntimeException(e); }
                    }
                }
                System.out.println("woken thread exits with 3");
                System.exit(3);
            });
            t.start();
            synchronized (lock) { released = true; lock.notify(); }
            t.join();
            System.out.println("not reached");
        }
        if (args.length > 0) { // a lock-order deadlock: the JVM hangs (the interpreter names it)
            Object first = new Object(), second = new Object();
            synchronized (second) {
                new Thread(() -> { synchronized (first) { synchronized (second) { } } }).start();
                synchronized (first) { }
            }
        }
        Buffer buffer = new Buffer(3);
        int producers = 3, perProducer = 200;
        long[] sums = new long[2];
        Thread[] consumers = new Thread[2];
        for (int c = 0; c < consumers.length; c++) {
            final int id = c;
            consumers[c] = new Thread(() -> {
                try {
                    for (int i = 0; i < producers * perProducer / consumers.length; i++) sums[id] += buffer.take();
                } catch (InterruptedException e) {
                    throw new RuntimeException(e);
                }
            });
            consumers[c].start();
        }
        List<Thread> ps = new ArrayList<>();
        for (int p = 0; p < producers; p++) {
            final int base = p * 1000;
            Thread t = new Thread(() -> {
                try {
                    for (int i = 1; i <= perProducer; i++) buffer.put(base + i);
                } catch (InterruptedException e) {
                    throw new RuntimeException(e);
                }
            }, "producer-" + p);
            ps.add(t);
            t.start();
        }
        for (Thread t : ps) t.join();
        for (Thread t : consumers) t.join();
        System.out.println("total " + (sums[0] + sums[1]) + " buffer never over capacity: " + (buffer.maxSeen <= 3));

        Latch latch = new Latch(4);
        int[] done = new int[1];
        for (int k = 0; k < 4; k++) {
            new Thread(() -> {
                try { Thread.sleep(5); } catch (InterruptedException e) { throw new RuntimeException(e); }
                synchronized (done) { done[0]++; }
                latch.countDown();
            }).start();
        }
        latch.await();
        System.out.println("latch released after " + done[0] + " workers");

        Object lock = new Object();
        synchronized (lock) {
            lock.wait(10); // nobody notifies: returns after the timeout
            lock.notify(); // nobody waits: nothing happens
        }
        System.out.println("timed wait returned");
        Thread sleeper = new Thread(() -> {
            try { Thread.sleep(200); } catch (InterruptedException e) { throw new RuntimeException(e); }
        });
        sleeper.start();
        sleeper.join(1);
        System.out.println("alive after join(1): " + sleeper.isAlive());
        sleeper.join();
        System.out.println("alive after join(): " + sleeper.isAlive());
        try {
            lock.notify();
        } catch (IllegalMonitorStateException e) {
            System.out.println(e);
        }
        try {
            lock.wait();
        } catch (IllegalMonitorStateException e) {
            System.out.println(e);
        }
        Thread late = new Thread(() -> {
            synchronized (lock) {
                while (!released) {
                    try { lock.wait(); } catch (InterruptedException e) { throw new RuntimeException(e); }
                }
            }
            System.out.println("late thread woken after main's last line");
        });
        late.start();
        System.out.println("main's last line");
        new Thread(() -> { synchronized (lock) { released = true; lock.notifyAll(); } }).start();
    }
}
