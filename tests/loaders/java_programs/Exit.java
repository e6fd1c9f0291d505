/** System.exit with a status, output on both streams, and command-line arguments. */
public class Exit {
    public static void main(String[] args) {
        System.out.println("args " + args.length);
        for (String a : args) System.out.println("arg [" + a + "]");
        System.err.println("to stderr");
        if (args.length > 1) System.exit(Integer.parseInt(args[1]));
        System.out.println("not reached");
    }
}
