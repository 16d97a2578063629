// Package testimage builds small OCI image archives from the host's static busybox, so that
// tests and demos can run real containers without a registry, Docker or the network.
//
// The archive is what `containerd import` (and berth's executor ImportImage) reads: an
// oci-layout file, index.json and content-addressed blobs, with one gzip layer holding
// /bin/busybox, its applet links, /etc/passwd and /etc/group (root, nobody and app
// 1000:1000), /tmp (1777) and the files given in Options.Extra. The same options give the
// same bytes, so an image's digest only changes when a test changes what is in it.
package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Annotations read by importers to name the image. containerd (1.6 and 2.x, also when the
// client imports) names an image after io.containerd.image.name first and falls back to
// org.opencontainers.image.ref.name, which by the OCI convention holds only the tag; both
// are written, as containerd's own exporter does.
const (
	AnnotationImageName = "io.containerd.image.name"
	AnnotationRefName   = "org.opencontainers.image.ref.name"
)

// OCI media types written into the archive.
const (
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// DefaultPath is the PATH of the image's environment.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Applets are the busybox applets linked into /bin. The list is fixed rather than taken
// from `busybox --list`, so the image does not change with the host's busybox build.
var Applets = []string{
	"[", "ash", "awk", "basename", "cat", "chmod", "chown", "cp", "cut", "date", "df", "dirname",
	"du", "echo", "env", "expr", "false", "find", "grep", "head", "hostname", "httpd", "id", "ip",
	"kill", "ln", "ls", "mkdir", "mount", "mv", "nc", "nslookup", "ping", "printf", "ps", "pwd",
	"readlink", "rm", "sed", "seq", "sh", "sleep", "sort", "stat", "sync", "tail", "tee", "test",
	"timeout", "top", "touch", "tr", "true", "uname", "uniq", "wc", "wget", "whoami", "xargs",
	"yes",
}

// File is an extra file of the image. A Mode of 0 means 0644; a directory mode
// (fs.ModeDir|perm) makes an empty directory.
type File struct {
	Content []byte
	Mode    fs.FileMode
	UID     int
	GID     int
}

// Options describe one image. Only Name is required.
type Options struct {
	// Name is the image name importers give it, e.g. "berth.test/busybox:1".
	Name string
	// Busybox is the static busybox to copy in; empty means /bin/busybox, then PATH.
	Busybox    string
	Entrypoint []string
	// Cmd defaults to ["sh"] when neither Cmd nor Entrypoint is set.
	Cmd []string
	// Env is added after PATH.
	Env        []string
	User       string
	WorkingDir string
	Labels     map[string]string
	StopSignal string
	// Extra adds files by absolute path; parent directories are made as needed.
	Extra map[string]File
}

// epoch is every entry's modification time: fixed so the bytes do not depend on when or
// where the image was built.
var epoch = time.Unix(0, 0).UTC()

// Build writes the OCI image archive described by opts to w.
func Build(w io.Writer, opts Options) error {
	if opts.Name == "" {
		return errors.New("testimage: Options.Name is required")
	}
	bb, err := busyboxPath(opts.Busybox)
	if err != nil {
		return err
	}
	bin, err := os.ReadFile(bb)
	if err != nil {
		return fmt.Errorf("testimage: read busybox: %w", err)
	}

	layerTar, err := buildLayer(bin, opts.Extra)
	if err != nil {
		return err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return err
	}
	if _, err := zw.Write(layerTar); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	layer := gz.Bytes()

	config, err := json.Marshal(imageConfig(opts, digestOf(layerTar)))
	if err != nil {
		return err
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     MediaTypeManifest,
		"config":        descriptor(MediaTypeConfig, config, nil),
		"layers":        []any{descriptor(MediaTypeLayer, layer, nil)},
	})
	if err != nil {
		return err
	}
	mdesc := descriptor(MediaTypeManifest, manifest, map[string]string{
		AnnotationImageName: opts.Name,
		AnnotationRefName:   refName(opts.Name),
	})
	mdesc["platform"] = map[string]string{"os": "linux", "architecture": runtime.GOARCH}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     MediaTypeIndex,
		"manifests":     []any{mdesc},
	})
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	entries := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{"blobs/sha256/" + digestOf(layer)[len("sha256:"):], layer},
		{"blobs/sha256/" + digestOf(config)[len("sha256:"):], config},
		{"blobs/sha256/" + digestOf(manifest)[len("sha256:"):], manifest},
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: epoch}); err != nil {
			return err
		}
	}
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: epoch}); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// busyboxPath finds a statically linked busybox: a dynamic one would not run in an image
// that has no C library.
func busyboxPath(p string) (string, error) {
	if p == "" {
		p = "/bin/busybox"
		if _, err := os.Stat(p); err != nil {
			lp, lerr := exec.LookPath("busybox")
			if lerr != nil {
				return "", errors.New("testimage: busybox not found (install Debian's busybox-static)")
			}
			p = lp
		}
	}
	f, err := elf.Open(p)
	if err != nil {
		return "", fmt.Errorf("testimage: busybox %s: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return "", fmt.Errorf("testimage: busybox %s is dynamically linked (install Debian's busybox-static)", p)
		}
	}
	return p, nil
}

type entry struct {
	hdr  tar.Header
	data []byte
}

func buildLayer(busybox []byte, extra map[string]File) ([]byte, error) {
	entries := map[string]entry{}
	dir := func(name string, mode int64, uid, gid int) {
		entries[name+"/"] = entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: gid}}
	}
	file := func(name string, data []byte, mode int64, uid, gid int) {
		entries[name] = entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), Uid: uid, Gid: gid}, data: data}
	}
	for _, d := range []string{"bin", "dev", "etc", "proc", "run", "sys", "usr", "usr/bin", "var", "home"} {
		dir(d, 0o755, 0, 0)
	}
	dir("root", 0o700, 0, 0)
	dir("tmp", 0o1777, 0, 0)
	dir("home/app", 0o755, 1000, 1000)
	file("bin/busybox", busybox, 0o755, 0, 0)
	for _, a := range Applets {
		entries["bin/"+a] = entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}}
	}
	file("etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\n"+
		"app:x:1000:1000:app:/home/app:/bin/sh\n"+
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"), 0o644, 0, 0)
	file("etc/group", []byte("root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"), 0o644, 0, 0)

	for p, f := range extra {
		name := strings.TrimPrefix(path.Clean("/"+p), "/")
		if name == "" || !path.IsAbs(p) {
			return nil, fmt.Errorf("testimage: extra file %q: path must be absolute", p)
		}
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if _, ok := entries[d+"/"]; !ok {
				dir(d, 0o755, 0, 0)
			}
		}
		perm := int64(f.Mode.Perm())
		if f.Mode&fs.ModeSticky != 0 {
			perm |= 0o1000
		}
		if f.Mode.IsDir() {
			if perm == 0 {
				perm = 0o755
			}
			dir(name, perm, f.UID, f.GID)
			continue
		}
		if perm == 0 {
			perm = 0o644
		}
		// An extra file replaces a default one of the same path, e.g. a custom /etc/passwd.
		delete(entries, name+"/")
		file(name, f.Content, perm, f.UID, f.GID)
	}

	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	// Sorted order puts every directory before its contents.
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := entries[n]
		e.hdr.ModTime = epoch
		e.hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, fmt.Errorf("testimage: layer entry %s: %w", n, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func imageConfig(opts Options, diffID string) map[string]any {
	cfg := map[string]any{"Env": append([]string{DefaultPath}, opts.Env...)}
	if len(opts.Entrypoint) > 0 {
		cfg["Entrypoint"] = opts.Entrypoint
	}
	switch {
	case len(opts.Cmd) > 0:
		cfg["Cmd"] = opts.Cmd
	case len(opts.Entrypoint) == 0:
		cfg["Cmd"] = []string{"sh"}
	}
	if opts.User != "" {
		cfg["User"] = opts.User
	}
	if opts.WorkingDir != "" {
		cfg["WorkingDir"] = opts.WorkingDir
	}
	if len(opts.Labels) > 0 {
		cfg["Labels"] = opts.Labels
	}
	if opts.StopSignal != "" {
		cfg["StopSignal"] = opts.StopSignal
	}
	return map[string]any{
		"created":      epoch.Format(time.RFC3339),
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config":       cfg,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	}
}

func descriptor(mediaType string, data []byte, annotations map[string]string) map[string]any {
	d := map[string]any{"mediaType": mediaType, "digest": digestOf(data), "size": len(data)}
	if len(annotations) > 0 {
		d["annotations"] = annotations
	}
	return d
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// refName is the tag part of name, what the OCI ref.name annotation holds by convention.
func refName(name string) string {
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		return name[i+1:]
	}
	return "latest"
}
