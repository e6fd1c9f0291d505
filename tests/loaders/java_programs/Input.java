import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.util.Scanner;

/** Standard input: numbers and words through Scanner; with args, line by line through BufferedReader.
 * (Not both on one input: the JVM's Scanner reads ahead 1024 characters, the interpreter's a line.) */
public class Input {
    public static void main(String[] args) throws IOException {
        if (args.length > 0) {
            BufferedReader reader = new BufferedReader(new InputStreamReader(System.in));
            String line;
            int count = 0;
            while ((line = reader.readLine()) != null) System.out.println(++count + " [" + line.strip() + "]");
            return;
        }
        Scanner in = new Scanner(System.in);
        int n = in.nextInt();
        long total = 0;
        for (int i = 0; i < n; i++) total += in.nextLong();
        double d = in.nextDouble();
        String word = in.next();
        System.out.println("sum " + total + " double " + d + " word " + word + " rest [" + in.nextLine() + "]");
        while (in.hasNextLine()) {
            String line = in.nextLine();
            if (line.equals("--")) break;
            System.out.println("line " + line.length() + ": " + line.toUpperCase());
        }
        System.out.println("scanner has more: " + in.hasNextLine());
    }
}
