// Command mkimage writes a busybox test image as an OCI archive, for demos and manual
// tests that have no registry:
//
//	go run ./internal/testimage/mkimage -name berth.demo/web:1 -o /tmp/web.tar \
//	    -file /www/index.html='hello v1' -workdir /www -- httpd -f -p 80 -h /www
//
// Arguments after the flags are the image's Cmd.
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/berthd/berth/internal/testimage"
)

type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		opts                      testimage.Options
		out, entrypoint           string
		env, labels, files, execs repeated
	)
	flag.StringVar(&opts.Name, "name", "", "image name, e.g. berth.demo/web:1 (required)")
	flag.StringVar(&out, "o", "", "output archive path (required)")
	flag.StringVar(&entrypoint, "entrypoint", "", "entrypoint, split on spaces")
	flag.StringVar(&opts.User, "user", "", "default user")
	flag.StringVar(&opts.WorkingDir, "workdir", "", "default working directory")
	flag.StringVar(&opts.StopSignal, "stop-signal", "", "stop signal, e.g. SIGQUIT")
	flag.Var(&env, "env", "KEY=VALUE added to the environment (repeatable)")
	flag.Var(&labels, "label", "KEY=VALUE image label (repeatable)")
	flag.Var(&files, "file", "/path=content: an extra file (repeatable)")
	flag.Var(&execs, "exec", "/path=content: an extra executable file (repeatable)")
	flag.Parse()
	if opts.Name == "" || out == "" {
		flag.Usage()
		return fmt.Errorf("-name and -o are required")
	}
	opts.Cmd = flag.Args()
	opts.Env = env
	if entrypoint != "" {
		opts.Entrypoint = strings.Fields(entrypoint)
	}
	if len(labels) > 0 {
		opts.Labels = map[string]string{}
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			opts.Labels[k] = v
		}
	}
	opts.Extra = map[string]testimage.File{}
	for _, set := range []struct {
		list repeated
		mode fs.FileMode
	}{{files, 0o644}, {execs, 0o755}} {
		for _, f := range set.list {
			p, content, ok := strings.Cut(f, "=")
			if !ok {
				return fmt.Errorf("file %q: want /path=content", f)
			}
			opts.Extra[p] = testimage.File{Content: []byte(content), Mode: set.mode}
		}
	}

	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := testimage.Build(f, opts); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, out)
}
