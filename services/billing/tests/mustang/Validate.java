import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import org.mustangproject.validator.ZUGFeRDValidator;

/**
 * Validates each PDF named on the command line with Mustang (Factur-X XML: XSD and schematron; PDF/A-3: veraPDF),
 * in one JVM so that many files cost one start-up. Writes the XML report next to each file (file.pdf.report.xml)
 * and prints one verdict line per file, "MUSTANG-VERDICT valid|invalid path", among whatever the libraries log.
 * Exit status: 0 when every file was completely valid, 1 otherwise.
 */
public final class Validate {
    public static void main(String[] args) throws IOException {
        boolean allValid = true;
        for (String pdf : args) {
            ZUGFeRDValidator validator = new ZUGFeRDValidator();  // one per file: it keeps state between calls
            String report = validator.validate(pdf);
            boolean valid = validator.wasCompletelyValid();
            allValid &= valid;
            Files.writeString(Path.of(pdf + ".report.xml"), report, StandardCharsets.UTF_8);
            System.out.println("MUSTANG-VERDICT " + (valid ? "valid" : "invalid") + " " + pdf);
        }
        System.exit(allValid ? 0 : 1);
    }
}
