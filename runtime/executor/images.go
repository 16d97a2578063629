package executor

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
)

// image finds ref in the image store, as written first and then in its normalized form
// ("busybox" -> "docker.io/library/busybox:latest"): archives may name images either way.
func (e *Executor) image(ctx context.Context, ref string) (client.Image, error) {
	img, err := e.client.GetImage(ctx, ref)
	if err == nil || !errdefs.IsNotFound(err) {
		return img, wrap(err, "image %s", ref)
	}
	named, perr := reference.ParseDockerRef(ref)
	if perr != nil || named.String() == ref {
		return nil, wrap(err, "image %s", ref)
	}
	img, err = e.client.GetImage(ctx, named.String())
	return img, wrap(err, "image %s", ref)
}

// unpack unpacks img for the executor's snapshotter unless it was seen unpacked
// before: asking containerd costs a few content reads and a snapshot lookup, at every
// task otherwise. Create forgets an image whose snapshot turns out to be missing.
func (e *Executor) unpack(ctx context.Context, img client.Image) error {
	key := img.Target().Digest
	if _, ok := e.unpacked.Load(key); ok {
		return nil
	}
	if err := e.unpackNow(ctx, img); err != nil {
		return err
	}
	e.unpacked.Store(key, struct{}{})
	return nil
}

func (e *Executor) unpackNow(ctx context.Context, img client.Image) error {
	ok, err := img.IsUnpacked(ctx, e.snapshotter)
	if err != nil {
		return wrap(err, "image %s: check unpacked", img.Name())
	}
	if ok {
		return nil
	}
	e.log.Info("unpacking image", "image", img.Name(), "snapshotter", e.snapshotter)
	return wrap(img.Unpack(ctx, e.snapshotter), "image %s: unpack", img.Name())
}

// EnsureImage makes ref present and unpacked: an image already in the store is only
// unpacked if needed; otherwise it is pulled, with credentials from the registry config
// and plain HTTP for registries on localhost. Concurrent calls for one image share a pull.
func (e *Executor) EnsureImage(ctx context.Context, ref string) error {
	ctx = e.nsctx(ctx)
	img, err := e.image(ctx, ref)
	if err == nil {
		return e.unpack(ctx, img)
	}
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return fmt.Errorf("executor: image %q: %w: %v", ref, ErrInvalid, err)
	}
	name := named.String()
	_, err, _ = e.pulls.Do(name, func() (any, error) {
		e.log.Info("pulling image", "image", name)
		_, err := e.client.Pull(ctx, name,
			client.WithPullUnpack,
			client.WithPullSnapshotter(e.snapshotter),
			client.WithResolver(e.resolver()))
		return nil, wrap(err, "pull %s", name)
	})
	return err
}

// ImportImage loads an OCI or Docker image archive, unpacks its images and returns their
// names. OCI archives name images with the io.containerd.image.name annotation (or
// org.opencontainers.image.ref.name); an archive that names none is refused, as its
// content would be unreachable.
func (e *Executor) ImportImage(ctx context.Context, r io.Reader) ([]string, error) {
	ctx = e.nsctx(ctx)
	imgs, err := e.client.Import(ctx, r)
	if err != nil {
		return nil, importError(err)
	}
	if len(imgs) == 0 {
		return nil, &invalidError{"the archive names no image: an OCI archive needs the io.containerd.image.name or org.opencontainers.image.ref.name annotation (skopeo copy docker://IMAGE oci-archive:FILE:IMAGE writes it)"}
	}
	names := make([]string, 0, len(imgs))
	for _, m := range imgs {
		if err := e.unpack(ctx, client.NewImage(e.client, m)); err != nil {
			return names, err
		}
		names = append(names, m.Name)
	}
	e.log.Info("imported images", "images", names)
	return names, nil
}

// makeArchive says how to make an archive ImportImage reads.
const makeArchive = "make it with 'docker save -o FILE IMAGE' or 'skopeo copy docker://IMAGE oci-archive:FILE:IMAGE'"

// importError says what is wrong with a file that is no image archive, which is most
// of what users hand to image load by mistake.
func importError(err error) error {
	switch {
	case errors.Is(err, tar.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "archive/tar:"):
		return &invalidError{fmt.Sprintf("the file is not a whole Docker or OCI image archive (tar: %v); %s", err, makeArchive)}
	case strings.Contains(err.Error(), "unrecognized image format"):
		return &invalidError{"the file is a tar archive but no image archive: it has neither the manifest.json of docker save nor the index.json of an OCI layout; " + makeArchive}
	}
	return wrap(err, "import image archive")
}

// invalidError is an ErrInvalid whose message is a sentence for the user alone.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

func (e *Executor) resolver() remotes.Resolver {
	return docker.NewResolver(docker.ResolverOptions{
		Hosts: docker.ConfigureDefaultRegistries(
			docker.WithPlainHTTP(docker.MatchLocalhost),
			docker.WithAuthorizer(docker.NewDockerAuthorizer(docker.WithAuthCreds(e.credentials))),
		),
	})
}

// dockerConfig is the part of a docker config.json that gives credentials: static
// ones in "auths", and credential helpers (docker-credential-<name> on PATH) in
// "credHelpers", by registry, and "credsStore", for every registry.
type dockerConfig struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
	} `json:"auths"`
	CredHelpers map[string]string `json:"credHelpers"`
	CredsStore  string            `json:"credsStore"`
}

// credentials answers the docker authorizer's question for host, as docker does: the
// registry's credential helper, else the file's static credentials, else the default
// credential store. A missing config means anonymous access, which public images
// need anyway.
func (e *Executor) credentials(host string) (string, string, error) {
	if e.registryConfig == "" {
		return "", "", nil
	}
	b, err := os.ReadFile(e.registryConfig)
	if errors.Is(err, os.ErrNotExist) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("registry config: %w", err)
	}
	var cfg dockerConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return "", "", fmt.Errorf("registry config %s: %w", e.registryConfig, err)
	}
	for key, helper := range cfg.CredHelpers {
		if registryHost(key) == host {
			return e.helperCredentials(helper, host)
		}
	}
	for key, a := range cfg.Auths {
		if registryHost(key) != host {
			continue
		}
		if a.IdentityToken != "" {
			// An empty user with a secret is how containerd's authorizer takes a refresh
			// token.
			return "", a.IdentityToken, nil
		}
		if a.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return "", "", fmt.Errorf("registry config %s: auth for %s: %w", e.registryConfig, key, err)
			}
			user, pass, _ := strings.Cut(string(dec), ":")
			return user, pass, nil
		}
		return a.Username, a.Password, nil
	}
	if cfg.CredsStore != "" {
		return e.helperCredentials(cfg.CredsStore, host)
	}
	return "", "", nil
}

// helperTimeout bounds a credential helper's run: a helper waiting on a keychain
// prompt must not hold a pull forever.
const helperTimeout = 30 * time.Second

// helperCredentials runs docker-credential-<helper> get for host, with the protocol
// of docker's credential helpers: the server URL on stdin, a JSON answer on stdout.
// A helper that has nothing for host means anonymous access.
func (e *Executor) helperCredentials(helper, host string) (string, string, error) {
	bin := "docker-credential-" + helper
	server := host
	if host == "registry-1.docker.io" {
		server = "https://index.docker.io/v1/" // the key docker stores Hub's credentials under
	}
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "get")
	cmd.Stdin = strings.NewReader(server)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if strings.Contains(string(out), "credentials not found") {
			return "", "", nil
		}
		msg := strings.TrimSpace(stderr.String() + " " + string(out))
		return "", "", fmt.Errorf("registry config %s: credential helper %s for %s: %w %s", e.registryConfig, bin, host, err, msg)
	}
	var ans struct{ Username, Secret string }
	if err := json.Unmarshal(out, &ans); err != nil {
		return "", "", fmt.Errorf("registry config %s: credential helper %s for %s: %w", e.registryConfig, bin, host, err)
	}
	if ans.Username == "<token>" {
		return "", ans.Secret, nil
	}
	return ans.Username, ans.Secret, nil
}

// registryHost turns a config.json "auths" key (a host, a URL, or Docker Hub's legacy
// index URL) into the host name the authorizer asks about.
func registryHost(key string) string {
	h := key
	if strings.Contains(key, "://") {
		if u, err := url.Parse(key); err == nil {
			h = u.Host
		}
	}
	h, _, _ = strings.Cut(h, "/")
	switch h {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return "registry-1.docker.io"
	}
	return h
}
