/** Strings: StringBuilder, String methods, String.format, concatenation of every type, charsets. */
import java.nio.charset.StandardCharsets;

public class Strs {
    static class Point {
        final int x, y;
        Point(int x, int y) { this.x = x; this.y = y; }
        @Override public String toString() { return "(" + x + "," + y + ")"; }
    }

    public static void main(String[] args) {
        StringBuilder sb = new StringBuilder("hello");
        sb.append(' ').append("world").append(42).append(3.5).append(true).append(7L);
        sb.insert(0, ">> ");
        sb.setCharAt(3, 'H');
        sb.deleteCharAt(sb.length() - 1);
        System.out.println(sb + " len=" + sb.length() + " rev=" + new StringBuilder("abc").reverse());
        String s = "  Mixed Case, Text  ";
        System.out.println("[" + s.trim() + "] " + s.toUpperCase() + s.toLowerCase().strip().length());
        System.out.println(s.indexOf("Case") + " " + s.lastIndexOf('e') + " " + s.contains("Text") + " " + s.replace(' ', '_'));
        String[] parts = "a,b,,c,".split(",");
        System.out.println(parts.length + " " + String.join("|", parts) + " " + "ab".repeat(3));
        System.out.println("substring " + "abcdef".substring(2) + " " + "abcdef".substring(1, 4) + " " + "x".compareTo("y"));
        char c = 'Q'; long big = 1L << 40; float f = 2.5f; double d = 1e-5; boolean ok = false; Object none = null;
        byte by = (byte) 200; short sh = (short) 70000;
        System.out.println("concat " + c + big + f + d + ok + none + by + sh + new Point(1, 2) + 'x' + 0.1f + 1.0 / 3);
        System.out.println(String.format("%d|%5d|%-5d|%05d|%x|%X|%o|%,d", 42, 42, 42, 42, 255, 255, 8, 1234567));
        System.out.println(String.format("%.3f|%10.2f|%e|%s|%S|%c|%b|%%|%n", Math.PI, -2.5, 12345.678, "str", "up", 'z', true).trim());
        System.out.printf("%s has %d items costing %.2f%n", "cart", 3, 9.999);
        byte[] utf8 = "héllo €".getBytes(StandardCharsets.UTF_8);
        System.out.println("utf8 bytes " + utf8.length + " first " + utf8[1] + " back " + new String(utf8, StandardCharsets.UTF_8));
        byte[] latin = "héllo".getBytes(StandardCharsets.ISO_8859_1);
        System.out.println("latin1 " + latin.length + " " + latin[1] + " ascii " + new String(new byte[] {72, 105}, StandardCharsets.US_ASCII));
        char[] chars = "chars".toCharArray();
        chars[0] = 'C';
        System.out.println(new String(chars) + " " + String.valueOf(chars, 1, 3) + " " + "abc".equals("ab" + "c") + " " + "Abc".equalsIgnoreCase("aBC"));
        String text = "";
        for (int i = 0; i < 5; i++) text += i;
        System.out.println(text + " hash " + "hello".hashCode() + " " + "a1b2".matches("[a-z0-9]+"));
    }
}
