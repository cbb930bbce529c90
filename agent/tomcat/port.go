package tomcat

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// checkPortFree makes sure nothing listens on the address the instance's
// HTTP connector binds to. Tomcat that finds its port taken logs the bind
// error and runs on without a connector: its start would pass and its
// health check wait out its whole timeout. The error names the port and,
// when /proc tells, the process that holds it.
func (c *config) checkPortFree(port int) error {
	if port <= 0 {
		return nil
	}
	addr := net.JoinHostPort(c.connectorAddress(port), strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err == nil {
		return l.Close()
	}
	held := ""
	if pid, name := portHolder(port); pid > 0 {
		held = fmt.Sprintf(", held by pid %d (%s)", pid, name)
	}
	return fmt.Errorf("HTTP port %d is taken (%v%s): stop that process, or give the instance a free port in conf/server.xml and agent.yaml", port, err, held)
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

// portHolder finds the process with a listening TCP socket on port, from
// /proc/net/tcp{,6} and the processes' fds. It returns 0 when it cannot
// tell: the socket is another user's, or in another network namespace.
func portHolder(port int) (pid int, name string) {
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		for _, inode := range listeningInodes(table, port) {
			inodes["socket:["+inode+"]"] = true
		}
	}
	if len(inodes) == 0 {
		return 0, ""
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fdDir := filepath.Join("/proc", p.Name(), "fd")
		fds, _ := os.ReadDir(fdDir)
		for _, fd := range fds {
			if link, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && inodes[link] {
				comm, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
				return pid, strings.TrimSpace(string(comm))
			}
		}
	}
	return 0, ""
}

// listeningInodes returns the inodes of the sockets that listen on port in
// a /proc/net/tcp table: "sl local_address rem_address st ... inode", the
// local address as hex IP:port, state 0A for LISTEN.
func listeningInodes(table string, port int) []string {
	f, err := os.Open(table)
	if err != nil {
		return nil
	}
	defer f.Close()
	want := fmt.Sprintf(":%04X", port)
	var inodes []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != "0A" || !strings.HasSuffix(fields[1], want) {
			continue
		}
		inodes = append(inodes, fields[9])
	}
	return inodes
}
