package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/berthd/berth/internal/testenv"
)

func requireBusybox(t *testing.T) {
	t.Helper()
	if _, err := busyboxPath(""); err != nil {
		testenv.Unavailable(t, err.Error())
	}
}

type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
}

func readArchive(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = data
	}
}

// blob returns the blob d points at, after checking that its digest and size match.
func blob(t *testing.T, files map[string][]byte, d ociDescriptor) []byte {
	t.Helper()
	data, ok := files["blobs/sha256/"+d.Digest[len("sha256:"):]]
	if !ok {
		t.Fatalf("blob %s (%s) missing", d.Digest, d.MediaType)
	}
	sum := sha256.Sum256(data)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != d.Digest {
		t.Fatalf("blob %s has digest %s", d.Digest, got)
	}
	if int64(len(data)) != d.Size {
		t.Fatalf("blob %s: size %d, ociDescriptor says %d", d.Digest, len(data), d.Size)
	}
	return data
}

func TestBuildArchiveIsValidOCI(t *testing.T) {
	requireBusybox(t)
	opts := Options{
		Name:       "berth.test/busybox:1",
		Cmd:        []string{"sleep", "1000"},
		User:       "app",
		WorkingDir: "/srv",
		Labels:     map[string]string{"a": "b"},
		StopSignal: "SIGQUIT",
		Extra: map[string]File{
			"/srv/version": {Content: []byte("v1\n")},
			"/srv/run.sh":  {Content: []byte("#!/bin/sh\n"), Mode: 0o755},
		},
	}
	var buf bytes.Buffer
	if err := Build(&buf, opts); err != nil {
		t.Fatal(err)
	}
	files := readArchive(t, buf.Bytes())
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Fatalf("oci-layout = %q", files["oci-layout"])
	}
	var index struct {
		SchemaVersion int             `json:"schemaVersion"`
		Manifests     []ociDescriptor `json:"manifests"`
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	if index.SchemaVersion != 2 || len(index.Manifests) != 1 {
		t.Fatalf("index: %+v", index)
	}
	md := index.Manifests[0]
	if md.Annotations[AnnotationImageName] != opts.Name || md.Annotations[AnnotationRefName] != "1" {
		t.Fatalf("manifest annotations: %v", md.Annotations)
	}
	var manifest struct {
		Config ociDescriptor   `json:"config"`
		Layers []ociDescriptor `json:"layers"`
	}
	if err := json.Unmarshal(blob(t, files, md), &manifest); err != nil {
		t.Fatal(err)
	}
	var config struct {
		OS     string `json:"os"`
		Config struct {
			Env        []string
			Cmd        []string
			User       string
			WorkingDir string
			StopSignal string
		} `json:"config"`
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(blob(t, files, manifest.Config), &config); err != nil {
		t.Fatal(err)
	}
	if config.OS != "linux" || config.Config.User != "app" || config.Config.WorkingDir != "/srv" ||
		config.Config.StopSignal != "SIGQUIT" || len(config.Config.Cmd) != 2 || config.Config.Env[0] != DefaultPath {
		t.Fatalf("config: %+v", config)
	}
	if len(manifest.Layers) != 1 || len(config.RootFS.DiffIDs) != 1 {
		t.Fatalf("layers %d, diff ids %d", len(manifest.Layers), len(config.RootFS.DiffIDs))
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob(t, files, manifest.Layers[0])))
	if err != nil {
		t.Fatal(err)
	}
	layer, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(layer)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != config.RootFS.DiffIDs[0] {
		t.Fatalf("diff id %s, uncompressed layer is %s", config.RootFS.DiffIDs[0], got)
	}

	entries := map[string]*tar.Header{}
	var contents = map[string]string{}
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name] = h
		if h.Typeflag == tar.TypeReg && h.Size < 4096 {
			b, _ := io.ReadAll(tr)
			contents[h.Name] = string(b)
		}
	}
	if h := entries["bin/busybox"]; h == nil || h.Mode != 0o755 {
		t.Fatalf("bin/busybox: %+v", h)
	}
	if h := entries["bin/sh"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
		t.Fatalf("bin/sh: %+v", h)
	}
	if h := entries["tmp/"]; h == nil || h.Mode != 0o1777 {
		t.Fatalf("tmp/: %+v", h)
	}
	if h := entries["srv/"]; h == nil || h.Typeflag != tar.TypeDir {
		t.Fatalf("parent of an extra file missing: %+v", h)
	}
	if contents["srv/version"] != "v1\n" || entries["srv/run.sh"].Mode != 0o755 {
		t.Fatalf("extra files: %q, %+v", contents["srv/version"], entries["srv/run.sh"])
	}
	for _, want := range []string{"root:x:0:0:", "app:x:1000:1000:", "nobody:x:65534:65534:"} {
		if !bytes.Contains([]byte(contents["etc/passwd"]), []byte(want)) {
			t.Fatalf("/etc/passwd lacks %q:\n%s", want, contents["etc/passwd"])
		}
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	requireBusybox(t)
	build := func(o Options) []byte {
		var buf bytes.Buffer
		if err := Build(&buf, o); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	v1 := Options{Name: "berth.test/app:1", Extra: map[string]File{"/v": {Content: []byte("1")}, "/w": {Content: []byte("x")}}}
	if !bytes.Equal(build(v1), build(v1)) {
		t.Fatal("two builds of the same options differ")
	}
	v2 := v1
	v2.Extra = map[string]File{"/v": {Content: []byte("2")}, "/w": {Content: []byte("x")}}
	if bytes.Equal(build(v1), build(v2)) {
		t.Fatal("different extra files built the same archive")
	}
}

func TestBuildRejectsBadInput(t *testing.T) {
	if err := Build(io.Discard, Options{}); err == nil {
		t.Fatal("no name: want an error")
	}
	requireBusybox(t)
	if err := Build(io.Discard, Options{Name: "x", Extra: map[string]File{"rel/path": {}}}); err == nil {
		t.Fatal("relative extra path: want an error")
	}
	if _, err := os.Stat("/bin/ls"); err == nil {
		if _, err := busyboxPath("/bin/ls"); err == nil {
			t.Fatal("the dynamically linked /bin/ls was accepted as busybox")
		}
	}
}
