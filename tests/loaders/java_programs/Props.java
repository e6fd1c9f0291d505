import java.io.File;

public class Props {
    public static void main(String[] args) {
        String[] keys = {"file.separator", "path.separator", "os.name", "os.arch", "user.dir", "user.home",
                         "user.name", "java.io.tmpdir", "java.specification.version", "java.class.version",
                         "file.encoding", "no.such.key"};
        for (String key : keys) {
            System.out.println(key + "=" + System.getProperty(key));
        }
        System.out.println("line.separator is \\n: " + System.getProperty("line.separator").equals("\n"));
        System.out.println("lineSeparator() length " + System.lineSeparator().length());
        System.out.println("default: " + System.getProperty("no.such.key", "fallback"));
        System.out.println("set returns " + System.setProperty("my.key", "one"));
        System.out.println("set again returns " + System.setProperty("my.key", "two"));
        System.out.println("get " + System.getProperty("my.key"));
        System.out.println("clear returns " + System.clearProperty("my.key") + ", now " + System.getProperty("my.key"));
        System.setProperty("flag", "TRUE");
        System.out.println("Boolean.getBoolean " + Boolean.getBoolean("flag") + " " + Boolean.getBoolean("nope"));
        System.out.println("File.separator " + File.separator + " " + File.pathSeparator);
        System.out.println("HOME " + System.getenv("HOME"));
        System.out.println("PROPS_TEST " + System.getenv("CEREBRO_PROPS_TEST_UNSET"));
        try {
            System.getProperty("");
        } catch (IllegalArgumentException e) {
            System.out.println(e);
        }
        try {
            System.getProperty(null);
        } catch (NullPointerException e) {
            System.out.println(e);
        }
        System.out.println(System.getProperty("java.version").startsWith("17"));
    }
}
