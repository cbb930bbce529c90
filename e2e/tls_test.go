package e2e_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baepo/baepo/agent"
	"github.com/baepo/baepo/agent/httpapi"
	"github.com/baepo/baepo/client"
	"github.com/baepo/baepo/engine"
)

// pki writes a CA, a server certificate for 127.0.0.1 and a client
// certificate into dir, as name.pem / name-key.pem.
func pki(t *testing.T, dir string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "baepo test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write := func(name string, der []byte, key *ecdsa.PrivateKey) {
		os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
		if key != nil {
			k, _ := x509.MarshalECPrivateKey(key)
			os.WriteFile(filepath.Join(dir, name+"-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: k}), 0o600)
		}
	}
	write("ca", caDER, nil)
	for i, leaf := range []struct {
		name  string
		usage x509.ExtKeyUsage
	}{{"server", x509.ExtKeyUsageServerAuth}, {"client", x509.ExtKeyUsageClientAuth}} {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: leaf.name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{leaf.usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		write(leaf.name, der, key)
	}
}

// TestMutualTLS serves a real agent with tls and client_ca, and reaches it
// with and without the client certificate.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	pki(t, dir)
	os.WriteFile(filepath.Join(dir, "token"), []byte("tls-token-0123456789"), 0o600)
	cfgPath := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfgPath, []byte(`listen: 127.0.0.1:0
token_file: token
data_dir: data
tls: { cert: server.pem, key: server-key.pem, client_ca: ca.pem }
services:
  A:
    driver: nop
    instances:
      a1: { port: 1 }
`), 0o600)
	cfg, err := agent.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(context.Background(), cfg, slog.New(slog.DiscardHandler), agent.Builtin{"nop": nopDriver{}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	served := make(chan error, 1)
	go func() {
		served <- httpapi.Serve(ctx, a, cfg, slog.New(slog.DiscardHandler), time.Second, func(ad net.Addr) { addr <- ad })
	}()
	url := "https://" + (<-addr).String()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()

	tests := []struct {
		name   string
		server client.Server
		want   string // "" = the step succeeds
	}{
		{"ca and client certificate", client.Server{CA: "ca.pem", Cert: "client.pem", Key: "client-key.pem"}, ""},
		{"no client certificate", client.Server{CA: "ca.pem"}, "certificate"},
		{"agent not trusted", client.Server{Cert: "client.pem", Key: "client-key.pem"}, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.server
			s.Name, s.Agent, s.TokenFile = "s", url, filepath.Join(dir, "token")
			for _, p := range []*string{&s.CA, &s.Cert, &s.Key} {
				if *p != "" {
					*p = filepath.Join(dir, *p)
				}
			}
			inv := &client.Inventory{File: "inventory.yaml", Servers: map[string]client.Server{"s": s}}
			target, err := client.NewAgentTarget(inv, os.Getenv, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			_, err = target.Do(context.Background(), engine.Instance{Server: "s", Service: "A", Name: "a1"}, engine.Step{Name: "stop"})
			switch {
			case tt.want == "" && err != nil:
				t.Fatal(err)
			case tt.want != "" && (err == nil || !errors.Is(err, engine.ErrUnreachable) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want an unreachable error about %q", err, tt.want)
			}
		})
	}
}
