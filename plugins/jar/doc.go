// Package jar is baepo's driver for self-contained Java applications that
// run as java -jar app.jar: the Spring Boot fat-JAR case. Its plugin binary
// is cmd/baepo-plugin-jar, whose main is sdk.Serve(jar.New()); the agent
// starts it from plugins_dir for services whose driver is "jar".
//
// An instance is a directory (dir) where the driver keeps the current
// release as app.jar and the JVM's stdout and stderr in logs/app.log. Start
// runs java [jvm_opts] -jar <dir>/app.jar [port_arg] [args] in a session of
// its own, so that the JVM outlives the plugin and the agent, and records
// its pid in the instance's state directory; Stop sends SIGTERM, waits, and
// sends SIGKILL after stop_timeout; Install replaces app.jar atomically. The
// custom step thread-dump sends SIGQUIT and returns the dump the JVM prints
// to app.log.
//
// It implements sdk.Driver, imports nothing of baepo but sdk and sdk/proc,
// and knows nothing of the agent's releases, locks, health checks or HTTP
// API.
package jar
