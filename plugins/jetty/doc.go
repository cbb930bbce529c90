// Package jetty is baepo's driver for Jetty 9 as Debian packages it
// (jetty9), and the worked example of a driver plugin: driver.go is the
// whole [sdk.Driver], config.go reads an instance's config and says what its
// process is, cmd/baepo-plugin-jetty/main.go is the one line
// sdk.Serve(jetty.New()), and the plugin imports nothing of baepo but
// package sdk and its process helpers, package sdk/proc. Build it into the
// agent's plugins_dir (or make build: bin/baepo-plugin-jetty) and name it
// in agent.yaml:
//
//	go build -o /opt/baepo/plugins/ ./plugins/jetty/cmd/baepo-plugin-jetty
//
//	services:
//	  B:
//	    driver: jetty
//	    context: /
//	    instances:
//	      b1: { jetty_base: /opt/jetty/b1, port: 8091 }
//
// One driver runs any number of JETTY_BASE directories against one shared
// JETTY_HOME (/usr/share/jetty9). Start runs
//
//	java [java_opts] -Djetty.home=<jetty_home> -Djetty.base=<jetty_base> \
//	    -jar <jetty_home>/start.jar jetty.http.port=<port> jetty.http.host=<host>
//
// in jetty_base, in a session of its own so that Jetty outlives the plugin
// and the agent, with its output appended to <jetty_base>/logs/jetty.out and
// its pid in the instance's state directory. The port and host go after
// start.jar, as start properties: there they override what the base's
// start.ini says, which JVM system properties (-D before -jar) do not. A
// Jetty is the instance's when its command line has the instance's
// -Djetty.base, which also finds one whose pid file was lost. Stop sends
// SIGTERM to it and SIGKILL after stop_timeout. Install atomically replaces
// webapps/<name>.war; a running Jetty redeploys it within a second.
//
// # Making a JETTY_BASE
//
// A JETTY_BASE needs Jetty's http and deploy modules (deploy brings webapp,
// servlet and server). Let start.jar write them:
//
//	mkdir -p /opt/jetty/b1 && cd /opt/jetty/b1
//	java -jar /usr/share/jetty9/start.jar jetty.home=/usr/share/jetty9 \
//	    jetty.base=/opt/jetty/b1 --add-to-start=http,deploy
//
// That makes start.ini (--module=http, --module=deploy) and webapps/.
// Debian's /etc/jetty9/start.ini (deploy, http, jsp, …) configures only
// the system's own Jetty, whose base is /usr/share/jetty9; another base
// does not read it, so add jsp and the like to its start.ini when its
// webapps need them.
//
// # Context paths
//
// Jetty 9's deployer names a webapp after its file: root.war (any case)
// serves "/", app.war serves "/app", and root-<host>.war serves "/" for the
// virtual host <host>. Unlike Tomcat it has no file name for a nested path
// (shop#cart.war serves "/shop#cart"), and it ignores dot-files. So the
// driver takes "/" and one-segment contexts only, and refuses contexts
// named root, root-…, or starting with a dot.
package jetty
