package jar

import (
	"archive/zip"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/baepo/baepo/sdk"
	"github.com/baepo/baepo/sdk/proc"
)

// install is Install: it puts rel's artifact in place as <dir>/app.jar.
// The JAR is copied to a temporary file in dir, checked to be a JAR that
// java -jar can run (a zip whose manifest names a Main-Class), synced,
// renamed over app.jar, and the directory synced (proc.Install): a crash
// leaves the old JAR or the new one, never half of one. A running JVM keeps
// the JAR it opened until it restarts.
func install(ctx context.Context, c *config, rel sdk.Release, found proc.Found) (sdk.Result, error) {
	var mainClass string
	res, err := proc.Install(ctx, rel, c.jar(), func(tmp string) (err error) {
		if mainClass, err = checkJAR(tmp); err != nil {
			return fmt.Errorf("artifact %s: %w", rel.Artifact, err)
		}
		return nil
	})
	if err != nil {
		return sdk.Result{}, err
	}
	if found.PID > 0 {
		res.Message += fmt.Sprintf(" (pid %d runs the old JAR until it restarts)", found.PID)
	}
	res.Output = map[string]string{"jar": c.jar(), "main_class": mainClass}
	return res, nil
}

// checkJAR checks that the file at path is a zip whose
// META-INF/MANIFEST.MF names a Main-Class, and returns the class.
func checkJAR(path string) (string, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return "", fmt.Errorf("not a JAR (a zip file): %w", err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if !strings.EqualFold(f.Name, "META-INF/MANIFEST.MF") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return "", fmt.Errorf("read META-INF/MANIFEST.MF: %w", err)
		}
		defer rc.Close()
		main, err := manifestMainClass(rc)
		if err != nil {
			return "", fmt.Errorf("read META-INF/MANIFEST.MF: %w", err)
		}
		if main == "" {
			return "", errors.New("not an executable JAR: META-INF/MANIFEST.MF names no Main-Class, so java -jar cannot run it")
		}
		return main, nil
	}
	return "", errors.New("not an executable JAR: it has no META-INF/MANIFEST.MF, so java -jar cannot run it")
}

// manifestMainClass returns the Main-Class of a JAR manifest's main
// section, joining continuation lines (which begin with a space).
func manifestMainClass(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	var headers []string
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			break // the end of the main section
		}
		if strings.HasPrefix(line, " ") && len(headers) > 0 {
			headers[len(headers)-1] += line[1:]
			continue
		}
		headers = append(headers, line)
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if ok && strings.EqualFold(name, "Main-Class") {
			return strings.TrimSpace(value), nil
		}
	}
	return "", nil
}
