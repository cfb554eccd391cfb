package snapshot

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Store keeps snapshots as objects under a prefix of a bucket. A snapshot
// is spooled to a local file, verified, then uploaded (multipart for large
// ones): S3 makes an object visible only once the upload is complete. Its
// description travels as object metadata.
type S3Store struct {
	client   *minio.Client
	bucket   string
	prefix   string
	spoolDir string
}

var _ Store = (*S3Store)(nil)

// S3Config says how to reach a bucket.
type S3Config struct {
	Endpoint  string
	Bucket    string
	Prefix    string
	Region    string
	AccessKey string
	SecretKey string
	// Insecure talks plain HTTP.
	Insecure bool
	// CAPEM verifies the endpoint's certificate; empty means system roots.
	CAPEM []byte
	// SpoolDir is the local folder snapshots are written to before upload.
	SpoolDir string
}

// partSize bounds the memory an upload takes: one part in flight.
const partSize = 16 << 20

// NewS3Store connects to a bucket (no request is made yet).
func NewS3Store(cfg S3Config) (*S3Store, error) {
	opts := &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: !cfg.Insecure,
		Region: cfg.Region,
	}
	if len(cfg.CAPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.CAPEM) {
			return nil, errors.New("the S3 CA bundle holds no certificate")
		}
		opts.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	client, err := minio.New(cfg.Endpoint, opts)
	if err != nil {
		return nil, err
	}
	prefix := strings.TrimPrefix(cfg.Prefix, "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &S3Store{client: client, bucket: cfg.Bucket, prefix: prefix, spoolDir: cfg.SpoolDir}, nil
}

// Check asks whether the bucket exists with these credentials.
func (s *S3Store) Check(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return classify(err)
	}
	if !ok {
		return fmt.Errorf("%w: bucket %s does not exist", ErrUnreachable, s.bucket)
	}
	return nil
}

// Spool is a file in the local spool folder.
func (s *S3Store) Spool(name string) string { return filepath.Join(s.spoolDir, name) }

// Commit uploads the spooled snapshot with its description, then removes
// the spool file.
func (s *S3Store) Commit(ctx context.Context, spool string, meta Meta) (string, error) {
	meta.Location = fmt.Sprintf("s3://%s/%s%s", s.bucket, s.prefix, meta.Name)
	desc, err := json.Marshal(meta)
	if err != nil {
		return "", err
	}
	_, err = s.client.FPutObject(ctx, s.bucket, s.prefix+meta.Name, spool, minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    partSize,
		UserMetadata: map[string]string{
			"Quorum-Meta":         base64.StdEncoding.EncodeToString(desc),
			"Quorum-Revision":     strconv.FormatInt(meta.Revision, 10),
			"Quorum-Sha256":       meta.SHA256,
			"Quorum-Etcd-Version": meta.EtcdVersion,
			"Quorum-Cluster-Id":   meta.ClusterID,
		},
	})
	if err != nil {
		return "", classify(err)
	}
	_ = os.Remove(spool)
	return meta.Location, nil
}

// List lists the series' snapshots under the prefix with their
// descriptions.
func (s *S3Store) List(ctx context.Context, series Series) ([]Meta, error) {
	var out []Meta
	for _, p := range []string{series.prefix(), series.legacyPrefix()} {
		for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + p}) {
			if obj.Err != nil {
				return nil, classify(obj.Err)
			}
			name := path.Base(obj.Key)
			if !series.Owns(name) {
				continue
			}
			meta, err := s.describe(ctx, name)
			if err != nil {
				continue
			}
			out = append(out, meta)
		}
	}
	sortNewestFirst(out)
	return out, nil
}

func (s *S3Store) describe(ctx context.Context, name string) (Meta, error) {
	info, err := s.client.StatObject(ctx, s.bucket, s.prefix+name, minio.StatObjectOptions{})
	if err != nil {
		return Meta{}, classify(err)
	}
	raw := ""
	for k, v := range info.UserMetadata {
		if strings.EqualFold(k, "Quorum-Meta") || strings.EqualFold(k, "X-Amz-Meta-Quorum-Meta") {
			raw = v
		}
	}
	if raw == "" {
		return Meta{}, fmt.Errorf("%s has no Quorum description", name)
	}
	data, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return Meta{}, err
	}
	var meta Meta
	if err := json.Unmarshal(data, &meta); err != nil {
		return Meta{}, err
	}
	return meta, nil
}

// Fetch downloads a snapshot into w.
func (s *S3Store) Fetch(ctx context.Context, name string, w io.Writer) (Meta, error) {
	meta, err := s.describe(ctx, name)
	if err != nil {
		return Meta{}, fmt.Errorf("%w: %s: %w", ErrNotFound, name, err)
	}
	obj, err := s.client.GetObject(ctx, s.bucket, s.prefix+name, minio.GetObjectOptions{})
	if err != nil {
		return Meta{}, classify(err)
	}
	defer func() { _ = obj.Close() }()
	if _, err := io.CopyBuffer(w, obj, make([]byte, 1<<20)); err != nil {
		return Meta{}, classify(err)
	}
	return meta, nil
}

// Delete removes a snapshot object.
func (s *S3Store) Delete(ctx context.Context, name string) error {
	return classify(s.client.RemoveObject(ctx, s.bucket, s.prefix+name, minio.RemoveObjectOptions{}))
}

// classify maps S3 errors to the store's errors, so conditions can say
// CredentialsInvalid or DestinationUnreachable.
func classify(err error) error {
	if err == nil {
		return nil
	}
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken":
		return fmt.Errorf("%w: %s", ErrCredentials, resp.Message)
	case "NoSuchBucket":
		return fmt.Errorf("%w: %s", ErrUnreachable, resp.Message)
	case "NoSuchKey":
		return fmt.Errorf("%w: %s", ErrNotFound, resp.Message)
	}
	if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("%w: %w", ErrCredentials, err)
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, err)
}
