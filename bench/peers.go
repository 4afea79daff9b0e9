package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gateway/config"
	"gateway/internal/testnet"
)

// peerNames are the proxies the gateway is compared with, in table order;
// each is also the name of its executable.
var peerNames = []string{"nginx", "haproxy", "caddy"}

const installHint = "apt-get install nginx-light haproxy caddy"

// peerTarget is nginx, haproxy or caddy configured for the same job as the
// gateway: the same routes, keep-alive to the backends, one
// worker/thread/GOMAXPROCS, no access log, in the foreground.
type peerTarget struct {
	kind   string
	bin    string
	listen string
	c      *child
}

func (p *peerTarget) name() string { return p.kind }
func (p *peerTarget) addr() string { return p.listen }
func (p *peerTarget) pid() int {
	if p.c == nil {
		return 0
	}
	return p.c.pid()
}
func (p *peerTarget) stop(b *bench) { b.sup.stop(p.c) }

func (p *peerTarget) start(ctx context.Context, b *bench, sc *scenario) error {
	ports, err := testnet.FreeAddrs(1)
	if err != nil {
		return err
	}
	p.listen = ports[0]
	dir := b.path(p.kind + "-" + sc.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var argv, env []string
	switch p.kind {
	case "nginx":
		argv, err = writeNginx(dir, p.bin, p.listen, b.backends, sc, b.tlsCert, b.tlsKey, b.opts.Cores)
	case "haproxy":
		argv, err = writeHAProxy(dir, p.bin, p.listen, b.backends, sc, b.opts.Cores)
	case "caddy":
		argv, env, err = writeCaddy(dir, p.bin, p.listen, b.backends, sc, b.opts.Cores)
	default:
		err = fmt.Errorf("unknown peer %q", p.kind)
	}
	if err != nil {
		return err
	}
	var logPath string
	if p.c, logPath, err = b.startProxy(p.kind, dir, argv, env); err != nil {
		return err
	}
	if err := waitReady(ctx, p.c, p.listen, sc, 60*time.Second); err != nil {
		return fmt.Errorf("%w (log: %s)", err, logPath)
	}
	return nil
}

// startProxy starts a proxy pinned to the proxy CPU in dir, its output
// to dir/output.log (returned for error messages).
func (b *bench) startProxy(name, dir string, argv, env []string) (*child, string, error) {
	logPath := filepath.Join(dir, "output.log")
	logf, err := logFile(logPath)
	if err != nil {
		return nil, logPath, err
	}
	defer logf.Close()
	argv = b.sup.pin.wrap(b.sup.pin.proxy, argv)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	c, err := b.sup.start(name, cmd)
	return c, logPath, err
}

// writeNginx writes nginx.conf for sc. Routes become prefix locations,
// which nginx keeps in a tree, so 10,000 of them are practical.
func writeNginx(dir, bin, listen string, backends []string, sc *scenario, cert, key string, cores int) ([]string, error) {
	var b strings.Builder
	// The user directive matters only when nginx starts as root (workers
	// would otherwise switch to nobody, who cannot write the temp dirs).
	if os.Geteuid() == 0 {
		if u, err := user.Current(); err == nil {
			fmt.Fprintf(&b, "user %s;\n", u.Username)
		}
	}
	fmt.Fprintf(&b, "worker_processes %d;\n", cores)
	fmt.Fprintf(&b, `daemon off;
master_process on;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path %[1]s/client_body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  # Load generators keep their connections open for the whole run; the
  # default of 1000 requests per client connection would add reconnects
  # that the other proxies do not have.
  keepalive_requests 1000000;
  upstream backends {
`, dir)
	for _, a := range backends {
		fmt.Fprintf(&b, "    server %s;\n", a)
	}
	fmt.Fprintf(&b, `    keepalive 64;
  }
  server {
    listen %s%s;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
`, listen, map[bool]string{true: " ssl", false: ""}[sc.TLS])
	if sc.TLS {
		// The gateway's defaults: Mozilla "intermediate" TLS 1.2 suites,
		// TLS 1.2 and 1.3, session cache and tickets.
		fmt.Fprintf(&b, `    ssl_certificate %s;
    ssl_certificate_key %s;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers %s;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
`, cert, key, strings.Join(config.DefaultCiphers(), ":"))
	}
	for i := range sc.Routes {
		fmt.Fprintf(&b, "    location %s { proxy_pass http://backends; }\n", sc.routePrefix(i))
	}
	b.WriteString("  }\n}\n")
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	// -e: nginx opens its compiled-in error log before it reads the
	// config; that path needs root.
	return []string{bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log")}, nil
}

// writeHAProxy writes haproxy.cfg for sc. 10,000 path_beg ACLs would be
// evaluated one by one; the route's first segment looked up in a pattern
// file (an exact-match tree) is how haproxy does a large table.
func writeHAProxy(dir, bin, listen string, backends []string, sc *scenario, cores int) ([]string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "global\n  nbthread %d\n", cores)
	b.WriteString(`defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
  http-reuse always
frontend fe
`)
	fmt.Fprintf(&b, "  bind %s\n", listen)
	if sc.Routes > 1 {
		lst := filepath.Join(dir, "routes.lst")
		var routes strings.Builder
		for i := range sc.Routes {
			fmt.Fprintf(&routes, "%s\n", strings.Trim(sc.routePrefix(i), "/"))
		}
		if err := os.WriteFile(lst, []byte(routes.String()), 0o644); err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "  acl route path,field(2,/) -m str -f %s\n", lst)
		b.WriteString("  http-request deny deny_status 404 unless route\n")
	}
	b.WriteString("  default_backend be\nbackend be\n  balance roundrobin\n")
	for i, a := range backends {
		fmt.Fprintf(&b, "  server n%d %s\n", i, a)
	}
	conf := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	return []string{bin, "-db", "-f", conf}, nil
}

// writeCaddy writes a Caddyfile for sc. Caddy matches paths one pattern
// after the other; with 10,000 routes that cost is caddy's own.
func writeCaddy(dir, bin, listen string, backends []string, sc *scenario, cores int) ([]string, []string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, `{
	admin off
	auto_https off
	storage file_system %s
	log {
		level WARN
	}
}
http://%s {
`, filepath.Join(dir, "data"), listen)
	proxy := "reverse_proxy " + strings.Join(backends, " ") + ` {
		lb_policy round_robin
		transport http {
			keepalive 60s
			keepalive_idle_conns 128
			keepalive_idle_conns_per_host 64
		}
	}
`
	if sc.Routes == 1 {
		b.WriteString("\t" + proxy)
	} else {
		b.WriteString("\t@routes path")
		for i := range sc.Routes {
			b.WriteString(" " + sc.routePrefix(i) + "*")
		}
		b.WriteString("\n\thandle @routes {\n\t" + proxy + "\t}\n\thandle {\n\t\trespond 404\n\t}\n")
	}
	b.WriteString("}\n")
	conf := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return nil, nil, err
	}
	env := []string{"GOMAXPROCS=" + strconv.Itoa(cores), "HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir}
	return []string{bin, "run", "--config", conf, "--adapter", "caddyfile"}, env, nil
}
