"""One typed settings object. Every value comes from an ``EVIDENCE_*`` environment variable
or the CLI; the defaults run the embedded mode with nothing installed."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from evidence.witness.config import Witness, parse_witnesses

GiB = 1024**3
TiB = 1024**4


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EVIDENCE_", extra="forbid", frozen=True)

    data_dir: Path = Path("./var")
    # Empty means "inside the data dir": SQLite database, local vault.
    database_url: str = ""
    storage_url: str = ""
    broker_url: str = ""

    host: str = "127.0.0.1"
    port: int = 8000
    # The address users reach the server at, for links printed by the CLI.
    public_url: str = ""

    # Bearer tokens for officers, auditors and admins (issued by `evidence users add`).
    token_issuer: str = "evidence"  # noqa: S105 (a name in the token, not a secret)
    token_audience: str = "evidence-api"  # noqa: S105 (a name in the token, not a secret)
    token_ttl_days: int = Field(default=90, ge=1)
    # Where the HS256 token secret comes from; generated into the data dir when empty.
    token_secret_file: Path | None = None

    # OpenID Connect access tokens from the force's identity provider, beside the local
    # tokens (told apart by their `iss`). Off while the issuer is empty.
    oidc_issuer: str = ""
    # The issuer's key set; empty means "the jwks_uri of the issuer's discovery document"
    # ({issuer}/.well-known/openid-configuration).
    oidc_jwks_url: str = ""
    oidc_audience: str = ""
    # Where the role is in the token: a claim name or a dotted path ("realm_access.roles");
    # its value a string, a list of strings, or a space-separated string.
    oidc_role_claim: str = "roles"
    # Claim values to our roles, "idp-value=role,..."; values equal to a role name map to
    # it without being listed.
    oidc_role_map: str = ""
    oidc_email_claim: str = "email"
    # An existing account is linked to an identity-provider subject by email only when this
    # claim of the token is true (the provider has verified the address). Empty: the provider
    # issues only addresses it manages (e.g. Entra ID), and every address counts as verified.
    oidc_email_verified_claim: str = "email_verified"
    oidc_algorithms: str = "RS256,ES256"
    # Allowed clock difference with the identity provider (exp, iat, nbf).
    oidc_leeway_seconds: float = Field(default=30, ge=0, le=300)
    # The key set is cached this long; an unknown `kid` (a rotated key) fetches it again,
    # at most once per cooldown; a failed fetch keeps the last good set.
    oidc_jwks_cache_seconds: float = Field(default=300, gt=0)
    oidc_jwks_refresh_cooldown_seconds: float = Field(default=30, ge=0)
    oidc_http_timeout_seconds: float = Field(default=5, gt=0)
    # "Sign in with your force account" on the web pages (authorization code flow with PKCE,
    # evidence.accounts.oidc_login): this service's client id at the identity provider.
    # Off while empty; needs the issuer above.
    oidc_client_id: str = ""
    # The client's secret, sent with HTTP Basic (client_secret_basic); none for a public client.
    oidc_client_secret: str | None = None
    # Space-separated; must include "openid".
    oidc_scopes: str = "openid email profile"
    # Empty means "from the issuer's discovery document" (authorization_endpoint, token_endpoint).
    oidc_authorization_endpoint: str = ""
    oidc_token_endpoint: str = ""
    # The most time between sending the browser to the identity provider and its return.
    oidc_sign_in_minutes: int = Field(default=10, ge=1, le=60)

    # Uploads
    max_upload_size: int = Field(default=1 * TiB, ge=1)
    upload_expiry_hours: float = Field(default=24 * 7, gt=0)
    # However often it is touched, an unfinished upload is removed this long after it began.
    upload_max_lifetime_hours: float = Field(default=24 * 30, gt=0)
    # The browser client's chunk: one PATCH each, so one request's worth of loss on a network
    # drop. At least 5 MiB, the smallest part S3 takes.
    web_chunk_size: int = Field(default=16 * 1024 * 1024, ge=5 * 1024 * 1024, le=1024 * 1024 * 1024)
    # Upload-Concat: final takes at most this many partial uploads.
    max_concat_partials: int = Field(default=1000, ge=1)
    # Caps on every request's headers (count, each value, all together); more is refused
    # with 431 before anything else reads them. Upload-Concat may be longer than one value:
    # up to max_concat_partials URLs.
    max_header_count: int = Field(default=100, ge=10)
    max_header_value_bytes: int = Field(default=16 * 1024, ge=1024)
    max_header_bytes: int = Field(default=64 * 1024, ge=4096)
    cleanup_interval_seconds: float = Field(default=3600, gt=0)
    # A PATCH without Upload-Checksum makes its progress durable (fdatasync, an S3 part) and
    # records its offset after about this many bytes each time: a crash in the middle of a
    # long PATCH loses at most this much. Smaller costs a sync and a database write more often.
    upload_checkpoint_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024)
    lock_timeout_seconds: float = Field(default=20, gt=0)
    s3_part_size: int = Field(default=16 * 1024 * 1024, ge=5 * 1024 * 1024)

    # Object storage credentials for an s3:// storage URL (else boto3's default chain).
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    retention_days: int = Field(default=7 * 365, ge=1)
    # The force's own periods before a case's material may be reviewed for disposal after no
    # further action and after an acquittal (the CPIA code sets none: evidence.retention.policy).
    retention_nfa_days: int = Field(default=365, ge=0)
    retention_acquitted_days: int = Field(default=365, ge=0)

    tmp_dir: Path | None = None

    # The custody ledger
    # The log's name in its signed checkpoints; keep it stable for the life of the ledger.
    ledger_origin: str = "evidence-transfer/custody-ledger"
    # The Ed25519 signing key (signed-note "PRIVATE+KEY+..." form); generated into the data
    # dir when not given.
    ledger_key_file: Path | None = None
    checkpoint_interval_seconds: float = Field(default=5, gt=0)
    # Witnesses (other forces' `evidence witness serve`, or any C2SP tlog-witness) asked to
    # cosign each new checkpoint: "URL=VERIFIER_KEY,..." (the key as `evidence witness keygen`
    # printed it). Asked in the background; one that is down is asked again later.
    witnesses: str = ""
    # The longest wait for one witness's answer.
    witness_timeout_seconds: float = Field(default=10, gt=0, le=120)

    # Signed links for reviewers
    # Ed25519 keys that sign link tokens, one <kid>.pem each (the newest signs; all verify);
    # generated into the data dir when empty.
    link_keys_dir: Path | None = None
    link_issuer: str = "evidence"
    # Wrong passcodes before a link locks for good, and the least time between two tries.
    link_passcode_attempts: int = Field(default=5, ge=1)
    link_passcode_interval_seconds: float = Field(default=1.0, ge=0)
    # A reviewer's browser session: how long a passcode, once given, and a counted use last.
    link_session_minutes: int = Field(default=60, ge=1)
    # At most one `link.accessed` entry per item, client and kind of access in this window
    # (full downloads are always recorded), and one per identical refusal.
    link_record_window_seconds: float = Field(default=1800, ge=0)
    # Requests one client may make on one link per minute (players seek with many Range
    # requests; a script hammering a link gets 429).
    link_requests_per_minute: int = Field(default=600, ge=10)
    # With nginx in front and a local vault on a disk it can read: the prefix of nginx's
    # `internal` location aliased to the vault's folder (e.g. "/_vault/"). A reviewer's
    # request is then checked and recorded here, and its bytes sent by nginx (X-Accel-Redirect,
    # sendfile). Empty: the app streams them itself (and always for S3). See infra/nginx.conf.
    accel_redirect: str = Field(default="", pattern=r"^(/([A-Za-z0-9_-]+/)+)?$")

    # Processing (the workers)
    # Hashes computed besides SHA-256, for legacy forensic tools: "md5,sha1", or empty.
    extra_hashes: str = ""
    # An ffmpeg executable to use instead of the pinned build shipped with imageio-ffmpeg.
    ffmpeg_path: str | None = None
    ffmpeg_threads: int = Field(default=2, ge=1)
    # Footage at least this long also gets HLS, so a reviewer can jump to hour two.
    hls_min_seconds: float = Field(default=600, ge=0)
    task_time_limit_seconds: int = Field(default=6 * 3600, ge=60)
    # A worker holds a lease on the step it runs (transcode.lease), renewed every third of
    # this while the step runs. A lease left unrenewed this long means its worker is gone:
    # the step is taken over. Shorter recovers sooner from a dead worker; longer rides out
    # longer stalls (a database failover) before a live worker's step is taken from it.
    lease_seconds: float = Field(default=60, ge=1)
    # Redis gives an unacknowledged task to another worker after this long. The lease, not
    # this, keeps a task from running twice (a copy delivered while a live worker holds the
    # step is dropped) and the upkeep takes over a dead worker's step soon after its lease
    # ends; redelivery is the backstop for a worker lost before it took the lease, or no
    # upkeep running. So: well past the lease (a copy delivered before the lease can have
    # ended is wasted), and short enough that such a loss waits minutes, not hours. A task
    # running longer is redelivered once per timeout, each copy dropped at once.
    broker_visibility_timeout_seconds: int = Field(default=600, ge=1)
    worker_concurrency: int = Field(default=1, ge=1)
    # A PDF's pages as images for reviewers (transcode.pdfpages): the first pdf_max_pages,
    # pdf_page_width pixels across (A4 at 150 dpi), a page of another shape scaled down to at
    # most pdf_max_page_pixels; no pages of a PDF larger than pdf_max_bytes (the worker renders
    # from a local copy), nor more than pdf_max_output_bytes of images (noise fills a PNG).
    pdf_page_width: int = Field(default=1240, ge=100, le=8192)
    pdf_max_pages: int = Field(default=300, ge=1)
    pdf_max_page_pixels: int = Field(default=16_000_000, ge=100_000)
    pdf_max_bytes: int = Field(default=1 * GiB, ge=1)
    pdf_max_output_bytes: int = Field(default=2 * GiB, ge=1024 * 1024)
    # Bounds on decoding hostile media. Larger images or frames are refused before decoding.
    max_image_pixels: int = Field(default=100_000_000, ge=1)
    max_video_pixels: int = Field(default=7680 * 4320, ge=1)
    # Address space of each ffmpeg or decoding child process: a bomb fails its item, not the host.
    decoder_memory_bytes: int = Field(default=4 * GiB, ge=256 * 1024 * 1024)
    # CPU seconds an item's processing may use in all: a base, plus this much per second of
    # footage at up to 1080p (scaled up with the pixel count beyond it).
    cpu_budget_base_seconds: float = Field(default=120, gt=0)
    cpu_budget_per_media_second: float = Field(default=10, gt=0)
    # Working copies for reviewers of what is not video: a text file's first bytes shown as
    # text, and previews of the images and videos inside a ZIP (at most this many, each entry
    # at most this large; the rest are listed as left out).
    text_copy_bytes: int = Field(default=1024 * 1024, ge=1024)
    preview_max_entries: int = Field(default=50, ge=0)
    preview_max_entry_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    # Times an item's processing may be started (interrupted, re-queued) before it is failed.
    max_processing_attempts: int = Field(default=3, ge=1)
    # `evidence serve` runs a worker beside the API (the embedded mode).
    embedded_worker: bool = True
    # Items still `received` this long after upload are queued again (a lost enqueue).
    requeue_after_seconds: float = Field(default=120, gt=0)

    # Fixity audits (evidence.fixity): every stored original and working copy is re-read,
    # re-hashed and compared with the SHA-256 recorded when it was stored, at least once a
    # cycle. Each object has its own place in the cycle (from its id), so the work is spread
    # evenly over it rather than all falling due together.
    fixity_cycle_days: float = Field(default=30, gt=0)
    # Reading for an audit is paced to at most this many bytes a second (0: unpaced), so
    # that uploads and processing keep the storage's bandwidth.
    fixity_bytes_per_second: int = Field(default=32 * 1024 * 1024, ge=0)
    # The scheduled audit (a periodic Celery task: beat in production, the embedded worker's
    # own beat under `evidence serve`) runs this often, checks what is due, and takes no new
    # object once it has run this long (the object in hand is finished); what is left stays
    # due for the next run.
    fixity_interval_seconds: float = Field(default=3600, gt=0)
    fixity_run_seconds: float = Field(default=600, gt=0)

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_path / 'evidence.db'}"

    @property
    def effective_storage_url(self) -> str:
        return self.storage_url or (self.data_path / "vault").as_uri()

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{self.data_path / 'broker.db'}"

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def effective_tmp_dir(self) -> Path:
        return self.tmp_dir or self.data_path / "tmp"

    @field_validator("extra_hashes")
    @classmethod
    def _known_hashes(cls, value: str) -> str:
        unknown = {n.strip().lower() for n in value.split(",") if n.strip()} - {"md5", "sha1", "sha256"}
        if unknown:
            raise ValueError(f"unknown hash algorithm(s): {', '.join(sorted(unknown))}; use md5, sha1")
        return value

    @field_validator("witnesses")
    @classmethod
    def _witnesses(cls, value: str) -> str:
        parse_witnesses(value)  # a ValueError names the bad one
        return value

    @property
    def witness_list(self) -> list[Witness]:
        return parse_witnesses(self.witnesses)

    @field_validator("oidc_algorithms")
    @classmethod
    def _asymmetric_only(cls, value: str) -> str:
        names = [n.strip() for n in value.split(",") if n.strip()]
        allowed = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
        # A shared-secret or unsigned algorithm would let anyone holding the public key sign.
        bad = [n for n in names if n not in allowed]
        if bad or not names:
            raise ValueError(f"not allowed for OIDC tokens: {', '.join(bad) or '(none given)'}; use e.g. RS256,ES256")
        return value

    @property
    def oidc_algorithm_list(self) -> tuple[str, ...]:
        return tuple(n.strip() for n in self.oidc_algorithms.split(",") if n.strip())

    @property
    def hash_algorithms(self) -> tuple[str, ...]:
        extra = [name.strip().lower() for name in self.extra_hashes.split(",") if name.strip()]
        return tuple(dict.fromkeys(["sha256", *extra]))

    @property
    def is_postgres(self) -> bool:
        return self.effective_database_url.startswith("postgresql")
