package proc

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CheckPortFree makes sure nothing listens on host:port ("" host: every
// address) before an app server is started on it: Tomcat and Jetty that
// find their port taken log the bind error late, or run on without a
// connector. The error names the port and, when /proc tells, the process
// that holds it: "port 8080 is taken (listen tcp :8080: bind: address
// already in use, held by pid 4711 (java))".
func CheckPortFree(host string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err == nil {
		return l.Close()
	}
	held := ""
	if pid, name := portHolder(port); pid > 0 {
		held = fmt.Sprintf(", held by pid %d (%s)", pid, name)
	}
	return fmt.Errorf("port %d is taken (%v%s)", port, err, held)
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
