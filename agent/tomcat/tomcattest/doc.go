// Package tomcattest makes real Tomcat fixtures for tests and the demo: a
// CATALINA_BASE made by Debian's tomcat10-instance-create that listens on
// loopback only, free ports, WARs built with the JDK's jar tool, and a small
// HTTP GET helper.
//
// It is an ordinary (non-test) package so that the tests of other packages
// can use it; nothing outside tests and the demo should import it. It knows
// Debian's Tomcat layout but nothing of the agent or the tomcat driver.
package tomcattest
