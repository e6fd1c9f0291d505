/** Exceptions: own hierarchy, try/catch/finally (nested, with return, rethrow), causes, stack traces
 * with line numbers, and an uncaught one ending the program (status 1). */
public class Exc {
    static class AppException extends Exception {
        final int code;
        AppException(String message, int code) { super(message); this.code = code; }
    }

    static class Detail extends AppException {
        Detail(String message, Throwable cause) { super(message, 7); initCause(cause); }
    }

    static int depth(int n) throws AppException {
        if (n == 0) throw new AppException("bottom reached", 42);
        return depth(n - 1) + 1;
    }

    @SuppressWarnings("finally")
    static int finallyWins() {
        try {
            return 1;
        } finally {
            return 2;
        }
    }

    static String order() {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 3; i++) {
            try {
                sb.append("t").append(i);
                if (i == 1) continue;
                if (i == 2) break;
                sb.append("x");
            } finally {
                sb.append("f");
            }
        }
        return sb.toString();
    }

    static void wrap() throws Detail {
        try {
            Object o = "text";
            Integer n = (Integer) o;
            System.out.println(n);
        } catch (ClassCastException e) {
            throw new Detail("wrapped", e);
        }
    }

    public static void main(String[] args) {
        try {
            depth(3);
        } catch (AppException e) {
            System.out.println("caught " + e.getMessage() + " code " + e.code);
            e.printStackTrace();
        }
        System.out.println("finally wins " + finallyWins() + " order " + order());
        try {
            wrap();
        } catch (Detail e) {
            System.out.println(e + " cause " + e.getCause().getClass().getName());
            e.printStackTrace();
        }
        int[] small = new int[2];
        try {
            small[5] = 1;
        } catch (ArrayIndexOutOfBoundsException e) {
            System.out.println("bounds: " + e.getMessage());
        } finally {
            System.out.println("after bounds");
        }
        try {
            try {
                throw new IllegalStateException("inner");
            } finally {
                System.out.println("inner finally");
            }
        } catch (RuntimeException e) {
            System.out.println("outer caught " + e);
        }
        try {
            Object[] objs = new String[1];
            String s = null;
            System.out.println(s.length() + objs.length);
        } catch (NullPointerException e) {
            System.out.println("npe caught");
        }
        try {
            throw new UnsupportedOperationException();
        } catch (IllegalArgumentException | UnsupportedOperationException e) {
            System.out.println("multi-catch " + e);
        }
        System.out.flush();
        new Exc().fail(3);
    }

    void fail(int n) {
        if (n > 0) {
            fail(n - 1);
            return;
        }
        throw new RuntimeException("uncaught at depth", new IllegalArgumentException("root cause"));
    }
}
