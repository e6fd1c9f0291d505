import java.util.*;
/** NullPointerException messages as the JVM words them (JEP 358): what failed and where the null came from. */
public class Nulls {
    String name; int[] data; Nulls next; static String S; static Nulls HEAD;
    static String get() { return null; }
    static void t(Runnable r) { try { r.run(); } catch (NullPointerException e) { System.out.println(e.getMessage()); } }
    public static void main(String[] args) {
        Nulls n = new Nulls();
        String s = null; int[] arr = null; Object[] objs = new Object[2]; List<String> list = null; Integer boxed = null;
        t(() -> System.out.println(s.length()));
        String local = null;
        try { local.trim(); } catch (NullPointerException e) { System.out.println(e.getMessage()); }
        try { n.name.length(); } catch (NullPointerException e) { System.out.println(e.getMessage()); }
        try { n.next.name = "x"; } catch (NullPointerException e) { System.out.println(e.getMessage()); }
        try { System.out.println(n.data[0]); } catch (NullPointerException e) { System.out.println(e.getMessage()); }
        try { System.out.println(n.data.length); } catch (NullPointerException e) { System.out.println(e.getMessage()); }
        try { S.isEmpty(); } catch (NullPointerException e) { System.out.println(e.getMessage()); }
        try { get().charAt(1); } catch (NullPointerException e) { System.out.println(e.getMessage()); }
        try { objs[1].hashCode(); } catch (NullPointerException e) { System.out.println(e.getMessage()); }
        try { list.size(); } catch (NullPointerException e) { System.out.println(e.getMessage()); }
        try { int x = boxed; } catch (NullPointerException e) { System.out.println(e.getMessage()); }
        try { arr[1] = 2; } catch (NullPointerException e) { System.out.println(e.getMessage()); }
        try { HEAD.next.next = null; } catch (NullPointerException e) { System.out.println(e.getMessage()); }
        try { throw null; } catch (NullPointerException e) { System.out.println(e.getMessage()); }
        try { synchronized (local) { } } catch (NullPointerException e) { System.out.println(e.getMessage()); }
        try { local.equals(args[0].substring(1)); } catch (Exception e) { System.out.println(e.getMessage()); }
        try { String.valueOf(local.toCharArray()); } catch (NullPointerException e) { System.out.println(e.getMessage()); }
        try { Map<String,String> m = new HashMap<>(); m.get("k").length(); } catch (NullPointerException e) { System.out.println(e.getMessage()); }
        long[] la = null; double[][] dd = new double[2][];
        try { la[0]++; } catch (NullPointerException e) { System.out.println(e.getMessage()); }
        try { dd[1][0] = 1; } catch (NullPointerException e) { System.out.println(e.getMessage()); }
        int i = 1; 
        try { objs[i].toString(); } catch (NullPointerException e) { System.out.println(e.getMessage()); }
        try { n.next.data[i] = 1; } catch (NullPointerException e) { System.out.println(e.getMessage()); }
    }
}
