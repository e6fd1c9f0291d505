// The Java reference for Demo.smali / Big.smali: the same program, run by `java Demo.java`.
public class Demo {
    static int counter = 5;
    int value;
    Demo(int v) { value = v; }
    int score() { return value * 2; }

    static int fib(int n) { int a = 0, b = 1; for (int i = 0; i < n; i++) { int t = a + b; a = b; b = t; } return a; }

    static String name(int k) {
        switch (k) { case 1: return "one"; case 2: return "two"; case 3: return "three"; default: return "many"; }
    }

    static int sparse(int k) {
        switch (k) { case -5: return 50; case 100: return 1; case 7000: return 7; default: return 0; }
    }

    public static void main(String[] args) {
        System.out.println("args=" + args.length);
        for (int i = 0; i < args.length; i++) System.out.println(args[i]);
        System.out.println(fib(46));
        System.out.println(fib(47));
        int x = 2147483647; x = x + 1; System.out.println(x);
        long big = 1L << 40; big = big * 3 + 7; System.out.println(big);
        System.out.println(-7 / 2); System.out.println(-7 % 2); System.out.println(-7 >> 1); System.out.println(-7 >>> 28);
        System.out.println(1.0f / 3); System.out.println(2.5 * 4.0e10); System.out.println(0.1 + 0.2);
        System.out.println((int) 3.99); System.out.println((long) -2.5e18); System.out.println((char) 65);
        int[] arr = {3, 1, 4, 1, 5, 9, 2, 6};
        int sum = 0; for (int i = 0; i < arr.length; i++) sum += arr[i] * arr[i]; System.out.println(sum);
        int[] sq = new int[5]; for (int i = 0; i < sq.length; i++) sq[i] = i * i; System.out.println(sq[4]);
        System.out.println(name(2).concat(name(9)));
        System.out.println(sparse(7000) + sparse(-5) + sparse(3));
        counter += 10; System.out.println(counter);
        Demo d = new Demo(7); Demo b = new Big(7);
        System.out.println(d.score() + b.score());
        StringBuilder sb = new StringBuilder();
        sb.append("pi~"); sb.append(3); sb.append('.'); sb.append(14159L); sb.append(true);
        System.out.println(sb.toString());
        System.out.println(10 / (args.length - args.length));
    }
}

class Big extends Demo {
    Big(int v) { super(v); }
    int score() { return value * 3; }
}
