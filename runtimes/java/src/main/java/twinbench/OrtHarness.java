// twinbench's Java runtime: one exported ONNX twin reloaded with ONNX Runtime's Java API.
//
//   java -jar target/twinbench-runtime-java.jar MODEL INPUT.json OUT_DIR CALLS WARMUP BUDGET_S THREADS
//
// The protocol shared by every foreign harness (runtimes/README.md): INPUT.json names a raw
// little-endian tensor, its dtype and shape; the harness writes to OUT_DIR the logits of each
// sample run at batch 1 (batch1.bin), of the whole batch in one call (batchn.bin) and
// result.json (versions, load time, its own timings). On an error it writes result.json with
// {"error": one line, "stage"} and exits 1: the driver records that line, never a trace.
package twinbench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public final class OrtHarness {
    private interface Infer {
        float[] run(int start, int n) throws Exception;
    }

    private OrtHarness() {}

    public static void main(String[] args) throws IOException {
        if (args.length != 7) {
            System.err.println("usage: MODEL INPUT.json OUT_DIR CALLS WARMUP BUDGET_S THREADS");
            System.exit(2);
        }
        Path out = Path.of(args[2]);
        String head = "{\"language\":\"Java\",\"versions\":{\"java\":"
                + quote(System.getProperty("java.version")) + ",\"onnxruntime-java\":"
                + quote(ortVersion()) + "},";
        String[] stage = {"load"};
        int rc = 0;
        String fields;
        try {
            fields = measure(args, out, stage);
        } catch (Exception e) {  // OrtException and friends: the first line, never a trace
            fields = "\"stage\":" + quote(stage[0]) + ",\"error\":"
                    + quote(e.getClass().getSimpleName() + ": " + firstLine(e.getMessage()));
            rc = 1;
        }
        Files.writeString(out.resolve("result.json"), head + fields + "}");
        System.exit(rc);
    }

    private static String measure(String[] args, Path out, String[] stage) throws Exception {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        OrtSession.SessionOptions opts = new OrtSession.SessionOptions();
        // intra-op threads as in the Python runtime; one inter-op thread; the CPU provider.
        opts.setIntraOpNumThreads(Integer.parseInt(args[6]));
        opts.setInterOpNumThreads(1);
        long t0 = System.nanoTime();
        OrtSession session = env.createSession(args[0], opts);
        double loadMs = (System.nanoTime() - t0) / 1e6;
        stage[0] = "run";
        Input x = Input.read(Path.of(args[1]));
        String name = session.getInputNames().iterator().next();
        Infer fn = (start, n) -> {
            try (OnnxTensor t = x.tensor(env, start, n);
                 OrtSession.Result r = session.run(Map.of(name, t))) {
                FloatBuffer fb = ((OnnxTensor) r.get(0)).getFloatBuffer();
                float[] y = new float[fb.remaining()];
                fb.get(y);
                return y;
            }
        };
        List<float[]> ones = new ArrayList<>();
        double firstMs = 0;
        for (int i = 0; i < x.n; i++) {
            t0 = System.nanoTime();
            ones.add(fn.run(i, 1));
            if (i == 0) firstMs = (System.nanoTime() - t0) / 1e6;
        }
        writeFloats(out.resolve("batch1.bin"), ones);
        String batchError = null;
        try {
            writeFloats(out.resolve("batchn.bin"), List.of(fn.run(0, x.n)));
        } catch (Exception e) {  // a static batch of 1 is a finding, not a failure
            batchError = firstLine(e.getMessage());
        }
        double[] ms = timeCalls(fn, Integer.parseInt(args[3]), Integer.parseInt(args[4]),
                                Double.parseDouble(args[5]));
        return "\"load_ms\":" + loadMs + ",\"first_call_ms\":" + firstMs
                + ",\"settings\":{\"intraOpNumThreads\":" + Integer.parseInt(args[6])
                + "},\"latency_ms\":" + Arrays.toString(ms).replace(" ", "")
                + (batchError == null ? "" : ",\"batch_n_error\":" + quote(batchError));
    }

    // As twinbench.measure.timing.time_calls: warm-up calls, then up to `calls` timed calls,
    // stopping once the timed calls have spent `budgetS`.
    private static double[] timeCalls(Infer fn, int calls, int warmup, double budgetS)
            throws Exception {
        for (int i = 0; i < warmup; i++) fn.run(0, 1);
        double[] out = new double[calls];
        double spent = 0;
        int k = 0;
        while (k < calls && spent < budgetS * 1e3) {
            long t0 = System.nanoTime();
            fn.run(0, 1);
            out[k] = (System.nanoTime() - t0) / 1e6;
            spent += out[k++];
        }
        return Arrays.copyOf(out, k);
    }

    /** The test batch: {"dtype", "shape", "data"} written by twinbench (export/foreign.py). */
    private static final class Input {
        final String dtype;
        final long[] shape;
        final ByteBuffer data;
        final int n;

        private Input(String dtype, long[] shape, ByteBuffer data) {
            this.dtype = dtype;
            this.shape = shape;
            this.data = data;
            this.n = (int) shape[0];
        }

        static Input read(Path header) throws IOException {
            String text = Files.readString(header);
            String dtype = field(text, "\"dtype\"\\s*:\\s*\"(\\w+)\"");
            long[] shape = Arrays.stream(field(text, "\"shape\"\\s*:\\s*\\[([0-9,\\s]*)\\]")
                    .split(",")).map(String::trim).mapToLong(Long::parseLong).toArray();
            Path data = header.resolveSibling(field(text, "\"data\"\\s*:\\s*\"([^\"]+)\""));
            ByteBuffer buf = ByteBuffer.wrap(Files.readAllBytes(data)).order(ByteOrder.LITTLE_ENDIAN);
            return new Input(dtype, shape, buf);
        }

        OnnxTensor tensor(OrtEnvironment env, int start, int n) throws Exception {
            long[] s = shape.clone();
            s[0] = n;
            int per = (int) (Arrays.stream(shape).reduce(1, (a, b) -> a * b) / shape[0]);
            ByteBuffer b = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
            switch (dtype) {
                case "float32":
                    return OnnxTensor.createTensor(env, b.asFloatBuffer().position(start * per)
                            .slice().limit(n * per), s);
                case "int64":
                    return OnnxTensor.createTensor(env, b.asLongBuffer().position(start * per)
                            .slice().limit(n * per), s);
                case "int32":
                    return OnnxTensor.createTensor(env, b.asIntBuffer().position(start * per)
                            .slice().limit(n * per), s);
                default:
                    throw new IllegalArgumentException("unsupported input dtype " + dtype);
            }
        }
    }

    private static String field(String text, String regex) throws IOException {
        Matcher m = Pattern.compile(regex).matcher(text);
        if (!m.find()) throw new IOException("input header without " + regex);
        return m.group(1);
    }

    private static void writeFloats(Path path, List<float[]> parts) throws IOException {
        int total = parts.stream().mapToInt(p -> p.length).sum();
        ByteBuffer b = ByteBuffer.allocate(4 * total).order(ByteOrder.LITTLE_ENDIAN);
        FloatBuffer f = b.asFloatBuffer();  // one view: its position advances part by part
        for (float[] p : parts) f.put(p);
        Files.write(path, b.array());
    }

    private static String ortVersion() {
        try (InputStream in = OrtHarness.class.getResourceAsStream("/version.properties")) {
            Properties p = new Properties();
            p.load(in);
            return p.getProperty("onnxruntime");
        } catch (IOException | NullPointerException e) {
            return null;
        }
    }

    private static String firstLine(String text) {
        if (text == null) return "error";
        return Arrays.stream(text.split("\n")).filter(l -> !l.isBlank()).findFirst().orElse("error");
    }

    private static String quote(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }
}
