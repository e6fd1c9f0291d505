/** Numbers: parsing, Math, overflow, division and casts as the JVM defines them. */
public class Numbers {
    public static void main(String[] args) {
        System.out.println(Integer.parseInt("-123") + Integer.parseInt("ff", 16) + " " + Long.parseLong("9000000000") + " " + Double.parseDouble("2.5e3"));
        try {
            Integer.parseInt("12x");
        } catch (NumberFormatException e) {
            System.out.println("bad number: " + e.getMessage());
        }
        int max = Integer.MAX_VALUE;
        long lmax = Long.MAX_VALUE;
        System.out.println((max + 1) + " " + (lmax + 1) + " " + (-7 / 2) + " " + (-7 % 2) + " " + (7 >>> 1) + " " + (-8 >> 1) + " " + (-8 >>> 28));
        System.out.println(Math.floorMod(-7, 3) + " " + Math.floorDiv(-7, 3) + " " + Math.abs(-4.5) + " " + Math.max(3, 9) + " " + Math.min(-1L, 4L));
        System.out.println(Math.sqrt(2) + " " + Math.pow(2, 10) + " " + Math.round(2.5) + " " + Math.round(-2.5) + " " + Math.floor(-1.1) + " " + Math.ceil(1.1));
        double nan = 0.0 / 0.0;
        System.out.println((int) nan + " " + (int) 1e20 + " " + (long) -1e30 + " " + (int) 3.99 + " " + (byte) 300 + " " + (char) 66 + " " + (short) -40000);
        System.out.println(nan + " " + (1 / 0.0) + " " + (nan == nan) + " " + (nan < 1) + " " + Double.isNaN(nan) + " " + (0.1 + 0.2) + " " + 1e21 + " " + 100.0f / 3);
        System.out.println(Integer.toHexString(-1) + " " + Integer.toBinaryString(10) + " " + Long.toHexString(255L) + " " + Integer.bitCount(255) + " " + Integer.MIN_VALUE);
        long acc = 1;
        for (int i = 1; i <= 25; i++) acc *= i;
        System.out.println("25! mod 2^64 = " + acc + " " + (acc ^ (acc >>> 7)));
        int x = 10;
        x += 5; x -= 3; x *= 4; x /= 5; x %= 7; x <<= 3; x >>= 1; x |= 1; x &= 0xFF; x ^= 0x0F;
        System.out.println("x " + x + " " + (x++ + ++x) + " " + x);
        float f = 1.1f;
        double d = f;
        System.out.println(f + " " + d + " " + (float) 0.1 + " " + (double) 0.1f + " " + Float.parseFloat("3.25") + " " + (5 / 2.0f));
        Integer boxed = 127, other = 127;
        Long lb = 5L;
        System.out.println(boxed.equals(other) + " " + (boxed + other) + " " + lb.hashCode() + " " + Integer.valueOf(77).compareTo(78) + " " + Integer.compare(3, 2));
        try {
            System.out.println(10 / (x - x));
        } catch (ArithmeticException e) {
            System.out.println("arith " + e.getMessage());
        }
        try {
            System.out.println(10L % (long) (x - x));
        } catch (ArithmeticException e) {
            System.out.println("arith long " + e);
        }
        System.out.println((10.0 % 3) + " " + (-10.5 % 3) + " " + (5 % -3));
    }
}
