package baepo.testapp;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;

/**
 * baepo's test application: a self-contained HTTP server run as java -jar.
 *
 * <p>It listens on 127.0.0.1 at the port of its --server.port=N argument or,
 * without one, of the PORT environment variable, and serves GET /version (the
 * version baked into the JAR as baepo/testapp/version.txt) and GET /health
 * ("ok"). SIGTERM stops it cleanly through a shutdown hook; with the argument
 * --hang-on-term that hook never returns, so only SIGKILL ends the JVM.
 */
public final class Main {
    public static void main(String[] args) throws Exception {
        int port = -1;
        boolean hangOnTerm = false;
        for (String arg : args) {
            if (arg.startsWith("--server.port=")) {
                port = Integer.parseInt(arg.substring("--server.port=".length()));
            } else if (arg.equals("--hang-on-term")) {
                hangOnTerm = true;
            }
        }
        if (port < 0) {
            String env = System.getenv("PORT");
            if (env == null || env.isEmpty()) {
                System.err.println("testapp: no port: pass --server.port=N or set PORT");
                System.exit(2);
            }
            port = Integer.parseInt(env.trim());
        }
        String version;
        try (InputStream in = Main.class.getResourceAsStream("/baepo/testapp/version.txt")) {
            version = new String(in.readAllBytes(), StandardCharsets.UTF_8).trim();
        }

        HttpServer server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 0);
        server.createContext("/version", ex -> reply(ex, "/version", version));
        server.createContext("/health", ex -> reply(ex, "/health", "ok"));

        CountDownLatch stopped = new CountDownLatch(1);
        final boolean hang = hangOnTerm;
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            if (hang) {
                System.out.println("testapp: shutting down, and hanging (--hang-on-term)");
                while (true) {
                    try {
                        Thread.sleep(Long.MAX_VALUE);
                    } catch (InterruptedException e) {
                        // keep hanging
                    }
                }
            }
            server.stop(0);
            System.out.println("testapp: stopped");
            stopped.countDown();
        }, "testapp-shutdown"));

        server.start();
        System.out.println("testapp " + version + " listening on 127.0.0.1:" + port);
        stopped.await();
    }

    private static void reply(HttpExchange ex, String path, String body) throws IOException {
        byte[] b = (body + "\n").getBytes(StandardCharsets.UTF_8);
        int status = 200;
        if (!ex.getRequestURI().getPath().equals(path)) {
            status = 404;
            b = "not found\n".getBytes(StandardCharsets.UTF_8);
        }
        ex.getResponseHeaders().set("Content-Type", "text/plain; charset=utf-8");
        ex.sendResponseHeaders(status, b.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(b);
        }
    }
}
