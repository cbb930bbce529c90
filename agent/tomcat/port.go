package tomcat

import (
	"fmt"
	"net"
	"path/filepath"

	"github.com/baepo/baepo/sdk/proc"
)

// checkPortFree makes sure nothing listens on the address the instance's
// HTTP connector binds to. Tomcat that finds its port taken logs the bind
// error and runs on without a connector: its start would pass and its
// health check wait out its whole timeout.
func (c *config) checkPortFree(port int) error {
	if port <= 0 {
		return nil
	}
	if err := proc.CheckPortFree(c.connectorAddress(port), port); err != nil {
		return fmt.Errorf("HTTP %w: stop that process, or give the instance a free port in conf/server.xml and agent.yaml", err)
	}
	return nil
}

// connectorAddress is the address the HTTP connector on port binds to: its
// address attribute when literal, else "" (every address, as Tomcat does).
func (c *config) connectorAddress(port int) string {
	conns, err := httpConnectors(filepath.Join(c.base, "conf", "server.xml"))
	if err != nil {
		return ""
	}
	for _, conn := range conns {
		if conn.port == port && net.ParseIP(conn.address) != nil {
			return conn.address
		}
	}
	return ""
}
