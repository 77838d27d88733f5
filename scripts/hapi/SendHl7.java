// A tiny HL7 v2 client on HAPI (ca.uhn.hapi): sends HL7 files over MLLP, one after the other,
// and prints the acknowledgement of each. Used by tests/streams/hl7/test_hapi_mllp.py against
// `sunes hl7 listen`; compiled by scripts/fetch-hapi-jars.sh.
//
//   java -cp 'JARS/*:CLASSES' SendHl7 [--retry-seconds N] [--timeout-ms N] [--pause-ms N]
//       HOST PORT FILE...
//
// Each file is read in the charset its MSH-18 names (UTF-8 unless 8859/15 or 8859/1), its
// segments separated by CR, parsed by HAPI's PipeParser (generic model, no validation: the
// message goes out as it is written) and sent with HapiContext.newClient(host, port, false)
// .getInitiator().sendAndReceive(message). Per file, one line on stdout:
//
//   FILE<TAB>MSA-1<TAB>MSA-2<TAB>ERR-5.1 or -
//
// A send that fails (connection refused or cut, no answer in time) is retried with a new
// connection until --retry-seconds have passed: a sender re-sends what was not acknowledged.
// --pause-ms waits between two files (a feed at a hospital's pace).
// Exit status 0 when every file got an acknowledgement, 3 otherwise.

import ca.uhn.hl7v2.DefaultHapiContext;
import ca.uhn.hl7v2.HapiContext;
import ca.uhn.hl7v2.app.Connection;
import ca.uhn.hl7v2.llp.MinLowerLayerProtocol;
import ca.uhn.hl7v2.model.Message;
import ca.uhn.hl7v2.parser.GenericModelClassFactory;
import ca.uhn.hl7v2.validation.impl.ValidationContextFactory;
import java.io.IOException;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

public final class SendHl7 {
  private SendHl7() {}

  public static void main(String[] args) throws Exception {
    long retrySeconds = 60;
    int timeoutMs = 30_000;
    long pauseMs = 0;
    List<String> rest = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--retry-seconds" -> retrySeconds = Long.parseLong(args[++i]);
        case "--timeout-ms" -> timeoutMs = Integer.parseInt(args[++i]);
        case "--pause-ms" -> pauseMs = Long.parseLong(args[++i]);
        default -> rest.add(args[i]);
      }
    }
    if (rest.size() < 3) {
      System.err.println(
          "usage: SendHl7 [--retry-seconds N] [--timeout-ms N] [--pause-ms N] HOST PORT FILE...");
      System.exit(2);
    }
    String host = rest.get(0);
    int port = Integer.parseInt(rest.get(1));
    Sender sender = new Sender(host, port, timeoutMs);
    int failed = 0;
    try {
      for (String file : rest.subList(2, rest.size())) {
        String answer = sender.send(Path.of(file), retrySeconds * 1000);
        if (answer == null) {
          failed++;
          System.out.println(file + "\t-\t-\tno acknowledgement");
        } else {
          System.out.println(file + "\t" + answer);
        }
        System.out.flush();
        sleep(pauseMs);
      }
    } finally {
      sender.close();
    }
    System.exit(failed == 0 ? 0 : 3);
  }

  /** One HAPI context and connection, renewed after a failure. */
  static final class Sender {
    private final String host;
    private final int port;
    private final int timeoutMs;
    private HapiContext context;
    private Connection connection;

    Sender(String host, int port, int timeoutMs) {
      this.host = host;
      this.port = port;
      this.timeoutMs = timeoutMs;
    }

    /** "MSA-1\tMSA-2\tERR-5.1", or null when no acknowledgement came before the deadline. */
    String send(Path file, long retryMillis) throws IOException {
      String text = readHl7(file);
      long deadline = System.currentTimeMillis() + retryMillis;
      while (true) {
        try {
          if (connection == null) {
            open();
          }
          Message message = context.getPipeParser().parse(text);
          Message ack = connection.getInitiator().sendAndReceive(message);
          return summary(ack.encode());
        } catch (Exception e) { // IOException, LLPException, HL7Exception (timeout)
          System.err.println("SendHl7: " + file.getFileName() + ": " + e + "; retrying");
          close();
          if (System.currentTimeMillis() > deadline) {
            return null;
          }
          sleep(500);
        }
      }
    }

    private void open() throws Exception {
      context = new DefaultHapiContext();
      context.setModelClassFactory(new GenericModelClassFactory());
      context.setValidationContext(ValidationContextFactory.noValidation());
      context.setLowerLayerProtocol(new MinLowerLayerProtocol(true)); // MSH-18 picks the bytes
      connection = context.newClient(host, port, false);
      connection.getInitiator().setTimeout(timeoutMs, TimeUnit.MILLISECONDS);
    }

    void close() {
      try {
        if (connection != null) {
          connection.close();
        }
        if (context != null) {
          context.close();
        }
      } catch (IOException ignored) {
        // closing a connection that is already cut
      }
      connection = null;
      context = null;
    }
  }

  static String readHl7(Path file) throws IOException {
    byte[] bytes = Files.readAllBytes(file);
    String head = new String(bytes, 0, Math.min(bytes.length, 1024), StandardCharsets.ISO_8859_1);
    String firstLine = head.split("[\r\n]", 2)[0];
    Charset charset = StandardCharsets.UTF_8;
    if (firstLine.contains("8859/15")) {
      charset = Charset.forName("ISO-8859-15");
    } else if (firstLine.contains("8859/1")) {
      charset = StandardCharsets.ISO_8859_1;
    }
    String text = new String(bytes, charset).replace("\r\n", "\r").replace('\n', '\r');
    while (text.endsWith("\r")) {
      text = text.substring(0, text.length() - 1);
    }
    return text;
  }

  static String summary(String ack) {
    String code = "-";
    String control = "-";
    String reason = "-";
    for (String segment : ack.split("\r")) {
      String[] fields = segment.split("\\|", -1);
      if (fields[0].equals("MSA")) {
        code = field(fields, 1, code);
        control = field(fields, 2, control);
      } else if (fields[0].equals("ERR")) {
        reason = field(fields, 5, reason).split("\\^", -1)[0];
      }
    }
    return code + "\t" + control + "\t" + (reason.isEmpty() ? "-" : reason);
  }

  private static String field(String[] fields, int index, String fallback) {
    return index < fields.length && !fields[index].isEmpty() ? fields[index] : fallback;
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
