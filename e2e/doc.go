// Package e2e holds baepo's end-to-end tests and benchmarks: the real
// baepo and baepo-agent binaries, built by the tests, driving real Tomcat
// 10, Jetty 9 and Java processes from Debian's packages through real
// plugin processes, with real WARs and JARs built with the JDK, all on
// loopback ports. `make deps` installs what they need.
//
// The package has no code of its own; it sits apart so that the client's
// and the agent's unit tests need none of each other's internals.
package e2e
