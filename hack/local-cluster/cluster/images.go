package cluster

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"quorum.dev/quorum/internal/resources"
)

// imageSpec is an image made from static binaries: nothing can be pulled on
// these machines, so every image the cluster runs is built here and tagged
// with the name production uses.
type imageSpec struct {
	ref        string
	files      map[string]string // path in the image -> file on the host
	symlinks   map[string]string // path in the image -> link target
	entrypoint []string
	cmd        []string
	user       string
}

// imageSpecs lists the images of the local cluster.
func (c *Cluster) imageSpecs() ([]imageSpec, error) {
	bin := func(n string) string { return filepath.Join(c.Bin, n) }
	k8s := func(component string) imageSpec {
		return imageSpec{
			ref:   "registry.k8s.io/" + component + ":" + KubernetesVersion,
			files: map[string]string{"/usr/local/bin/" + component: bin(component)},
			cmd:   []string{"/usr/local/bin/" + component},
		}
	}
	previous := func(component string) imageSpec {
		return imageSpec{
			ref:   "registry.k8s.io/" + component + ":" + PreviousKubernetesVersion,
			files: map[string]string{"/usr/local/bin/" + component: filepath.Join(c.Bin, PreviousKubernetesVersion, component)},
			cmd:   []string{"/usr/local/bin/" + component},
		}
	}
	busybox, err := busyboxLinks()
	if err != nil {
		return nil, err
	}
	specs := []imageSpec{
		{ref: PauseImage, files: map[string]string{"/pause": c.path("build", "pause")}, entrypoint: []string{"/pause"}},
		{
			ref: "registry.k8s.io/etcd:" + EtcdVersion + "-0",
			files: map[string]string{
				"/usr/local/bin/etcd":    bin("etcd"),
				"/usr/local/bin/etcdctl": bin("etcdctl"),
				"/usr/local/bin/etcdutl": bin("etcdutl"),
			},
			cmd: []string{"/usr/local/bin/etcd"},
		},
		k8s("kube-apiserver"), k8s("kube-controller-manager"), k8s("kube-scheduler"),
		{ref: "registry.k8s.io/coredns/coredns:" + CoreDNSVersion, files: map[string]string{"/coredns": bin("coredns")}, entrypoint: []string{"/coredns"}},
		{ref: VersityImage, files: map[string]string{"/usr/local/bin/versitygw": bin("versitygw")}, entrypoint: []string{"/usr/local/bin/versitygw"}},
		{ref: LocalPathImage, files: map[string]string{"/usr/bin/local-path-provisioner": bin("local-path-provisioner")}, entrypoint: []string{"/usr/bin/local-path-provisioner"}},
		{ref: BusyboxImage, files: map[string]string{"/bin/busybox": "/bin/busybox"}, symlinks: busybox, cmd: []string{"sh"}},
		{ref: ManagerImage, files: map[string]string{"/manager": c.path("build", "manager")}, entrypoint: []string{"/manager"}, user: "65532:65532"},
		{ref: AgentImage, files: map[string]string{"/agent": c.path("build", "agent")}, entrypoint: []string{"/agent"}, user: "65532:65532"},
	}
	// What a hosted control plane's add-ons run on tenant nodes: kube-proxy
	// with the machine's iptables, and CoreDNS at the version the coreDNS
	// add-on picks for KubernetesVersion.
	proxy := k8s("kube-proxy")
	xtables, links, err := xtablesFiles()
	if err != nil {
		return nil, err
	}
	maps.Copy(proxy.files, xtables)
	proxy.symlinks = links
	hostedDNS := resources.CoreDNSVersion(KubernetesVersion)
	specs = append(specs, proxy, imageSpec{ref: resources.CoreDNSImage(hostedDNS),
		files: map[string]string{"/coredns": filepath.Join(c.Bin, "coredns-"+hostedDNS, "coredns")}, entrypoint: []string{"/coredns"}},
		// The konnectivity add-on: the server beside each hosted
		// apiserver, the agent on tenant nodes.
		imageSpec{ref: resources.KonnectivityServerImage(), files: map[string]string{"/proxy-server": bin("proxy-server")}, entrypoint: []string{"/proxy-server"}},
		imageSpec{ref: resources.KonnectivityAgentImage(), files: map[string]string{"/proxy-agent": bin("proxy-agent")}, entrypoint: []string{"/proxy-agent"}})
	if _, err := os.Stat(bin("agnhost")); err == nil {
		conformance, err := c.conformanceImages(busybox)
		if err != nil {
			return nil, err
		}
		specs = append(specs, conformance...)
	}
	if !c.WithoutPrevious {
		specs = append(specs, previous("kube-apiserver"), previous("kube-controller-manager"), previous("kube-scheduler"))
	}
	prevEtcd := filepath.Join(c.Bin, "v"+PreviousEtcdVersion)
	if _, err := os.Stat(filepath.Join(prevEtcd, "etcd")); err == nil && !c.WithoutPrevious {
		specs = append(specs, imageSpec{
			ref: "registry.k8s.io/etcd:" + PreviousEtcdVersion + "-0",
			files: map[string]string{
				"/usr/local/bin/etcd":    filepath.Join(prevEtcd, "etcd"),
				"/usr/local/bin/etcdctl": filepath.Join(prevEtcd, "etcdctl"),
				"/usr/local/bin/etcdutl": filepath.Join(prevEtcd, "etcdutl"),
			},
			cmd: []string{"/usr/local/bin/etcd"},
		})
	}
	return specs, nil
}

// Images the upstream conformance tests run, by the names e2e.test v1.36
// asks for (k8s.io/kubernetes/test/utils/image): agnhost built from its Go
// module with Debian's busybox, bash, OpenBSD netcat, dig, curl and ip
// beside it for the commands tests run in it, glibc-dns-testing (the same
// tools and getent), busybox (Debian's, with bash as its shell), and
// pause. Built once agnhost is (hack/build-binaries.sh agnhost); tenant
// nodes get them.
var (
	AgnhostImage            = "registry.k8s.io/e2e-test-images/agnhost:2.63.0"
	GlibcDNSTestingImage    = "registry.k8s.io/e2e-test-images/glibc-dns-testing:2.0.0"
	ConformanceBusyboxImage = "registry.k8s.io/e2e-test-images/busybox:1.37.0-1"
	ConformancePauseImage   = "registry.k8s.io/pause:3.10.2"
	AgnhostPreviousImage    = "registry.k8s.io/e2e-test-images/agnhost:2.55"
	KittenImage             = "registry.k8s.io/e2e-test-images/kitten:1.8"
	NautilusImage           = "registry.k8s.io/e2e-test-images/nautilus:1.8"
	SampleAPIServerImage    = "registry.k8s.io/e2e-test-images/sample-apiserver:1.29.2"
	E2EEtcdImage            = "registry.k8s.io/etcd:3.6.8-0"
)

func (c *Cluster) conformanceImages(busybox map[string]string) ([]imageSpec, error) {
	tools, err := agnhostTools()
	if err != nil {
		return nil, err
	}
	tools["/agnhost"] = filepath.Join(c.Bin, "agnhost")
	tools["/bin/busybox"] = "/bin/busybox"
	// As upstream's image: the test certificate at the root, CoreDNS as
	// /coredns (the DNS tests' custom servers), agnhost-2 a second name.
	for _, f := range []string{"localhost.crt", "localhost.key"} {
		path := filepath.Join(c.Bin, "e2e-images", "agnhost", f)
		if !exists(path) {
			return nil, fmt.Errorf("%s is not built (hack/build-binaries.sh agnhost)", path)
		}
		tools["/"+f] = path
	}
	tools["/coredns"] = filepath.Join(c.Bin, "coredns")
	links := maps.Clone(busybox)
	for p := range tools {
		delete(links, p)
	}
	links["/agnhost-2"] = "agnhost"
	// Debian's busybox shell runs its own applets before PATH (its nc
	// has no -v): the shell is bash, as the tests' commands expect.
	links["/bin/sh"] = "bash"
	delete(links, "/usr/bin/nc")
	// The DNS tests' second querier: glibc's resolver (getent) and dig
	// beside a shell.
	glibc := maps.Clone(tools)
	delete(glibc, "/agnhost")
	glibc["/usr/bin/getent"] = "/usr/bin/getent"
	if err := addLibraries(glibc); err != nil {
		return nil, err
	}
	// busybox: its shell is bash too. Debian's busybox shell (1.35) drops
	// environment variables whose names are not shell names (data-1, which
	// the ConfigMap and Secret tests read back with env); the upstream
	// image's keeps them, and so does bash.
	bbFiles := map[string]string{"/bin/busybox": "/bin/busybox", "/bin/bash": "/bin/bash"}
	if err := addLibraries(bbFiles); err != nil {
		return nil, err
	}
	bbLinks := maps.Clone(busybox)
	for p := range bbFiles {
		delete(bbLinks, p)
	}
	bbLinks["/bin/sh"] = "bash"
	specs := []imageSpec{
		{ref: AgnhostImage, files: tools, symlinks: links, entrypoint: []string{"/agnhost"}, cmd: []string{"pause"}},
		{ref: GlibcDNSTestingImage, files: glibc, symlinks: links, cmd: []string{"sh"}},
		{ref: ConformanceBusyboxImage, files: bbFiles, symlinks: bbLinks, cmd: []string{"sh"}},
		{ref: ConformancePauseImage, files: map[string]string{"/pause": c.path("build", "pause")}, entrypoint: []string{"/pause"}},
	}
	// What make conformance builds (hack/build-binaries.sh
	// conformance-images). kitten and nautilus (kubectl's Update Demo):
	// agnhost serving a picture and its data.json, from the module's
	// test/images.
	for ref, dir := range map[string]string{KittenImage: "kitten", NautilusImage: "nautilus"} {
		files := map[string]string{"/agnhost": tools["/agnhost"]}
		pictures, err := filepath.Glob(filepath.Join(c.Bin, "e2e-images", dir, "*"))
		if err != nil || len(pictures) == 0 {
			continue
		}
		for _, f := range pictures {
			files["/"+filepath.Base(f)] = f
		}
		specs = append(specs, imageSpec{ref: ref, files: files, entrypoint: []string{"/agnhost"}, cmd: []string{"test-webserver"}})
	}
	// The older agnhost the StatefulSet update tests start from: no module
	// here has agnhost 2.55, so it is 2.59, from the v1.35 module the
	// upgrade tests already use; what the tests need is an agnhost that is
	// not AgnhostImage.
	if prev := filepath.Join(c.Bin, PreviousKubernetesVersion, "agnhost"); exists(prev) {
		prevTools := maps.Clone(tools)
		prevTools["/agnhost"] = prev
		specs = append(specs, imageSpec{ref: AgnhostPreviousImage, files: prevTools, symlinks: links, entrypoint: []string{"/agnhost"}, cmd: []string{"pause"}})
	}
	// The Aggregator test's sample-apiserver and etcd.
	if bin := filepath.Join(c.Bin, "e2e-images", "sample-apiserver"); exists(bin) {
		specs = append(specs, imageSpec{ref: SampleAPIServerImage, files: map[string]string{"/sample-apiserver": bin}, entrypoint: []string{"/sample-apiserver"}})
	}
	if bin := filepath.Join(c.Bin, "e2e-images", "etcd-v3.6.8", "etcd"); exists(bin) {
		specs = append(specs, imageSpec{ref: E2EEtcdImage, files: map[string]string{"/usr/local/bin/etcd": bin}, cmd: []string{"/usr/local/bin/etcd"}})
	}
	return specs, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// xtablesFiles are the machine's iptables (the nft flavour, as the
// management nodes' kube-proxy uses it) for an image: the multi-call binary,
// its extensions, every library they load and the dynamic loader, and the
// command names kube-proxy runs, linked to the binary.
func xtablesFiles() (map[string]string, map[string]string, error) {
	const multi = "/usr/sbin/xtables-nft-multi"
	const extensions = "/usr/lib/x86_64-linux-gnu/xtables"
	exts, err := filepath.Glob(extensions + "/*.so")
	if err != nil || len(exts) == 0 {
		return nil, nil, fmt.Errorf("iptables is needed for the kube-proxy image (hack/install-deps.sh): no extensions in %s", extensions)
	}
	files := map[string]string{}
	for _, f := range append([]string{multi}, exts...) {
		files[f] = f
	}
	if err := addLibraries(files); err != nil {
		return nil, nil, err
	}
	links := map[string]string{}
	for _, name := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"} {
		links["/usr/sbin/"+name] = "xtables-nft-multi"
	}
	return files, links, nil
}

// addLibraries adds to files (path in the image -> file on the machine)
// every shared library its programs load, as ldd lists them, and the
// dynamic loader: libraries go under /usr/lib, where the loader looks
// without a cache.
func addLibraries(files map[string]string) error {
	for _, bin := range slices.Sorted(maps.Values(files)) {
		out, err := exec.Command("ldd", bin).CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "not a dynamic executable") {
				continue
			}
			return fmt.Errorf("ldd %s: %w", bin, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			for _, f := range strings.Fields(line) {
				if strings.HasPrefix(f, "/") {
					in := f
					if strings.HasPrefix(f, "/lib/") {
						in = "/usr" + f
					}
					files[in] = f
				}
			}
		}
	}
	return nil
}

// agnhostTools are the programs the conformance tests run inside agnhost
// besides agnhost itself (upstream's image adds them from Alpine): bash,
// OpenBSD netcat, dig, curl and ip, from Debian (hack/install-deps.sh).
func agnhostTools() (map[string]string, error) {
	files := map[string]string{
		"/bin/bash": "/bin/bash", "/usr/bin/nc": "/bin/nc.openbsd", "/usr/bin/dig": "/usr/bin/dig",
		"/usr/bin/curl": "/usr/bin/curl", "/usr/bin/ip": "/bin/ip",
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("the agnhost image needs %s (hack/install-deps.sh): %w", f, err)
		}
	}
	return files, addLibraries(files)
}

// busyboxLinks asks Debian's static busybox for its applets and links each
// in /bin, as the busybox image does.
func busyboxLinks() (map[string]string, error) {
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox-static is needed for the busybox image (hack/install-deps.sh): %w", err)
	}
	links := map[string]string{}
	for _, applet := range strings.Fields(string(out)) {
		if applet != "busybox" {
			links["/bin/"+applet] = "busybox"
		}
	}
	return links, nil
}

// buildImages writes each image as a docker-archive tarball under
// .local/images, rebuilding only those whose inputs changed, and returns
// the tarballs.
func (c *Cluster) buildImages() ([]string, error) {
	if err := c.buildLocalBinaries(); err != nil {
		return nil, err
	}
	specs, err := c.imageSpecs()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(c.Root, ".local", "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var tarballs []string
	for _, spec := range specs {
		file := c.imageTarball(spec.ref)
		key, err := spec.inputKey()
		if err != nil {
			return nil, err
		}
		stamp := file + ".key"
		if old, err := os.ReadFile(stamp); err == nil && string(old) == key {
			if _, err := os.Stat(file); err == nil {
				tarballs = append(tarballs, file)
				continue
			}
		}
		start := time.Now()
		if err := spec.write(file); err != nil {
			return nil, fmt.Errorf("building image %s: %w", spec.ref, err)
		}
		if err := os.WriteFile(stamp, []byte(key), 0o644); err != nil {
			return nil, err
		}
		c.Log("built image %s in %s", spec.ref, time.Since(start).Round(100*time.Millisecond))
		tarballs = append(tarballs, file)
	}
	return tarballs, nil
}

// imageTarball is where buildImages writes an image.
func (c *Cluster) imageTarball(ref string) string {
	return filepath.Join(c.Root, ".local", "images", strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
}

// buildLocalBinaries builds the binaries that come from this repository:
// the pause program, Quorum's manager and the end-to-end agent.
func (c *Cluster) buildLocalBinaries() error {
	for _, b := range []struct{ out, pkg string }{
		{c.path("build", "pause"), "./hack/local-cluster/pause"},
		{c.path("build", "manager"), "."},
		{c.path("build", "agent"), "./hack/local-cluster/agent"},
	} {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", b.out, b.pkg)
		cmd.Dir = c.Root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w: %s", b.pkg, err, out)
		}
	}
	return nil
}

// inputKey identifies what an image is built from: the files' contents and
// the spec itself (the manager is relinked on every run, so modification
// times would rebuild it every time).
func (s imageSpec) inputKey() (string, error) {
	h := sha256.New()
	_, _ = fmt.Fprintf(h, "%s|%v|%v|%s|v3\n", s.ref, s.entrypoint, s.cmd, s.user)
	for _, p := range slices.Sorted(maps.Keys(s.files)) {
		f, err := os.Open(s.files[p])
		if err != nil {
			return "", fmt.Errorf("image %s needs %s: %w", s.ref, s.files[p], err)
		}
		_, _ = fmt.Fprintf(h, "%s\n", p)
		_, err = io.Copy(h, f)
		_ = f.Close()
		if err != nil {
			return "", err
		}
	}
	for _, p := range slices.Sorted(maps.Keys(s.symlinks)) {
		_, _ = fmt.Fprintf(h, "%s -> %s\n", p, s.symlinks[p])
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (s imageSpec) write(file string) error {
	layer, err := s.layer()
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Created = v1.Time{Time: time.Unix(0, 0)}
	cfg.Config.Entrypoint = s.entrypoint
	cfg.Config.Cmd = s.cmd
	cfg.Config.User = s.user
	cfg.Config.Env = []string{"PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(s.ref)
	if err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// layer is the image's one layer: the base files every image has (passwd,
// group, a writable /tmp), then the binaries and links.
func (s imageSpec) layer() (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	dirs := map[string]bool{}
	addDir := func(dir string, mode int64) error {
		if dir == "/" || dir == "." || dirs[dir] {
			return nil
		}
		dirs[dir] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(dir, "/") + "/", Mode: mode, ModTime: epoch})
	}
	addParents := func(p string) error {
		parts := strings.Split(strings.TrimPrefix(filepath.Dir(p), "/"), "/")
		for i := range parts {
			if err := addDir("/"+strings.Join(parts[:i+1], "/"), 0o755); err != nil {
				return err
			}
		}
		return nil
	}
	addFile := func(p string, data []byte, mode int64) error {
		if err := addParents(p); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(p, "/"), Mode: mode, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := addDir("/tmp", 0o1777); err != nil {
		return nil, err
	}
	if err := addFile("/etc/passwd", []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"), 0o644); err != nil {
		return nil, err
	}
	if err := addFile("/etc/group", []byte("root:x:0:\nnonroot:x:65532:\n"), 0o644); err != nil {
		return nil, err
	}
	for _, p := range slices.Sorted(maps.Keys(s.files)) {
		data, err := os.ReadFile(s.files[p])
		if err != nil {
			return nil, err
		}
		if err := addFile(p, data, 0o755); err != nil {
			return nil, err
		}
	}
	for _, p := range slices.Sorted(maps.Keys(s.symlinks)) {
		if err := addParents(p); err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: strings.TrimPrefix(p, "/"), Linkname: s.symlinks[p], Mode: 0o777, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithCompressionLevel(gzip.BestSpeed))
}

// BuildImagesAndImport rebuilds the images whose inputs changed (Quorum's
// manager after a code change) and imports every image into each running
// node.
func (c *Cluster) BuildImagesAndImport() ([]string, error) {
	images, err := c.buildImages()
	if err != nil {
		return nil, err
	}
	for _, n := range Nodes {
		if _, alive := c.pid("containerd-" + n.Name); !alive {
			continue
		}
		for _, img := range images {
			if _, err := run("ctr", "--address", c.containerdSocket(n), "-n", "k8s.io", "images", "import", img); err != nil {
				return nil, fmt.Errorf("importing %s on %s: %w", filepath.Base(img), n.Name, err)
			}
		}
	}
	return images, nil
}
