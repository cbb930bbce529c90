// Package tomcat is baepo's built-in driver for Apache Tomcat as Debian
// packages it (tomcat10): one driver runs any number of CATALINA_BASE
// directories made by tomcat10-instance-create, against one shared
// CATALINA_HOME.
//
// It starts an instance with catalina.sh start and a pid file in the
// instance's state directory, and stops it by pid (SIGTERM, then SIGKILL
// after stop_timeout), because Debian's catalina.sh stop exits 1 and leaves
// a stale pid file. A JVM that runs with the instance's catalina.base but
// has no pid file is found in /proc and adopted. It installs a release by
// atomically replacing webapps/<name>.war, removes the temp copies that
// installs cut short by a crash left there (CleanLeftovers, which the agent
// calls at start), and reads logs/catalina.out.
//
// With sdk.Release.Hot it installs without a restart, by Tomcat's parallel
// deployment: the release goes beside the running one as
// webapps/<name>##<seq>-<release>.war and Tomcat's manager text interface,
// on loopback, deploys it (hot.go, manager.go); the custom step retire
// undeploys the older versions once their sessions end. Validate checks
// what that needs when the service's deploy_mode is hot (hotcheck.go). It
// implements sdk.Driver and knows nothing of the agent's releases, locks,
// health checks or HTTP API.
package tomcat
