// ingotd's configuration: embedded defaults, then a TOML file (--config), then command-line flags.
// Every key is documented in the README ("Configuration"). Read by the composition root (exe/), which
// hands each layer its own options; no library below reads this struct.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "config/auth_sections.h"
#include "config/image_extras.h"
#include "store/registry.h"

namespace ingot::config {

// [machines]: per-machine boot on the southbound listener (README "Machines and profiles").
struct MachinesConfig {
  bool enabled = true;
  int64_t holding_retry_seconds = 30;  // a machine without a profile asks again this often
  std::string public_url;    // the southbound URL as machines reach it (previews, proxyDHCP)
  std::string signing_cert;  // PEM; with signing_key: scripts and assets get PATH.sig (imgverify)
  std::string signing_key;   // PEM, unencrypted
  std::string signing_chain; // PEM certificates included in each signature (optional)
};

// [proxydhcp]: boot options for PXE clients, beside the site's DHCP server (off by default).
struct ProxyDhcpConfig {
  bool enabled = false;
  std::string listen = "0.0.0.0";  // the address the DHCP sockets bind (port 67, and 4011)
  std::string interface;           // bind to this interface only (SO_BINDTODEVICE)
  int64_t port = 67;               // DHCP server port (clients answer to port + 1)
  int64_t pxe_port = 4011;         // PXE boot server port (0: not served)
  std::string server_address;      // the IPv4 address machines reach Ingot at (next-server)
  std::string bios_bootfile = "undionly.kpxe";  // over TFTP, for legacy PXE ROMs
  std::string uefi_bootfile = "ipxe.efi";       // over TFTP, for UEFI PXE (x86-64)
  std::string arm64_bootfile = "ipxe-arm64.efi";
};

// [catalog]: where image and task records live (README "Catalog").
struct CatalogConfig {
  std::string driver = "sqlite";  // sqlite (embedded, <data_dir>/catalog.db) | postgres
  std::string dsn;                // postgres: libpq URI or key=value string
  int pool_size = 0;              // 0: sqlite max(8, worker_threads), postgres 16
  // postgres TLS and connection options (libpq's names); "" leaves the DSN's or libpq's default.
  std::string sslmode;
  std::string sslrootcert;
  std::string sslcert;
  std::string sslkey;
  std::string password_file;  // libpq passfile (host:port:db:user:password lines)
  int connect_timeout_s = 5;
  int statement_timeout_ms = 30000;
};

// [scrubber]: orphans and abandoned writes removed from the stores, stored images re-hashed, one
// node at a time across a cluster (service/scrubber.h; README "Scale-out").
struct ScrubberConfig {
  bool enabled = false;
  int64_t interval_s = 3600;   // one pass per interval, whichever node runs it
  int64_t grace_s = 3600;      // nothing younger than this is removed
  int64_t rehash_mib = 10240;  // bytes re-hashed per pass (MiB); 0: no re-hashing
  int64_t lease_s = 60;        // how long a pass's lease lasts between renewals
};

struct Config {
  // [server]
  std::string listen = "127.0.0.1:9292";
  int io_threads = 1;
  int worker_threads = 64;
  int header_timeout_ms = 30000;
  int idle_timeout_ms = 60000;
  int io_timeout_ms = 60000;
  std::string public_url;  // base for Location headers; default http://<listen>
  // Slow clients and admission (http::ServerOptions says what each means).
  int64_t min_data_rate = 1024;  // bytes/s
  int min_rate_grace_ms = 10000;
  int buffered_body_deadline_ms = 30000;
  int streamed_body_deadline_ms = 0;  // none: the minimum rate bounds an upload
  int max_streamed_bodies = 32;
  int max_connections = 8192;
  int max_connections_per_client = 1024;
  int max_requests_in_flight = 1024;
  int max_requests_in_flight_per_client = 512;
  int retry_after_seconds = 1;

  // [storage]
  std::string data_dir = "./ingot-data";
  // [[stores]]: name, driver, description, default, read_only, weight, then the driver's options. None
  // configured: one file store "file" under <data_dir>/images (see Stores()).
  std::vector<store::StoreConfig> stores;

  // [auth]
  std::string auth = "noauth";  // noauth | tokens | keystone
  std::string tokens_file;
  std::string noauth_project = "ingot-dev";
  // [keystone_authtoken], [policy], [quotas] (auth_sections.h)
  AuthSections auth_sections;
  // [metadefs], [cache], and [images] property protections (image_extras.h)
  ImageExtras image_extras;

  // [images]
  uint64_t size_cap = 1ull << 40;
  std::string hash_algo = "sha512";
  std::vector<std::string> disk_formats = {"ami", "ari", "aki",   "vhd", "vhdx", "vmdk",
                                           "raw", "qcow2", "vdi", "iso", "ploop", "gpt"};
  std::vector<std::string> container_formats = {"ami", "ari",    "aki",   "bare",
                                                "ovf", "ova", "docker", "compressed"};
  int property_quota = 128;
  int tag_quota = 128;
  int member_quota = 128;
  // Glance's show_multiple_locations: image documents carry `locations`, and JSON-patch add,
  // replace and remove on /locations are served (service/locations.h). Off by default, as Glance's.
  bool show_multiple_locations = false;
  // Glance's show_image_direct_url: image documents carry `direct_url` (the first location's URL).
  bool show_image_direct_url = false;
  // A shared (PostgreSQL) catalog: an upload's node renews its lease while bytes arrive; once it
  // has not for this long (the node died), another node puts the image back to `queued`.
  int64_t upload_lease_s = 120;

  // [import]: Glance's interoperable import (service::ImportOptions says what each means).
  std::vector<std::string> import_methods = {"glance-direct", "web-download", "copy-image",
                                             "glance-download"};
  std::string staging_dir;  // default <data_dir>/staging
  uint64_t staging_cap = 1ull << 40;
  int import_workers = 2;
  std::string node_name;  // this node in task leases (default: a new id per start)
  int task_lease_ms = 30000;
  int task_ttl_hours = 48;
  bool require_image_format_match = true;
  std::string convert_to;  // "" or "raw"
  bool keep_original = false;  // a converted image's original kept as an image of its own
  bool decompress = true;
  int import_max_redirects = 5;
  int import_connect_timeout_ms = 10000;
  int import_stall_timeout_ms = 60000;
  std::map<std::string, std::string> glance_regions;  // [import.glance_regions] name = "URL"
  std::vector<std::string> glance_download_properties = {"hw_", "trait:", "os_distro",
                                                         "os_secure_boot", "os_type"};
  std::map<std::string, std::string> inject;          // [import.inject] key = "value"
  std::vector<std::string> inject_ignore_roles = {"admin"};
  // [import_filtering_opts]: Glance's names and defaults.
  std::vector<std::string> allowed_schemes = {"http", "https"};
  std::vector<std::string> disallowed_schemes;
  std::vector<std::string> allowed_hosts;
  std::vector<std::string> disallowed_hosts;
  std::vector<uint32_t> allowed_ports = {80, 443};
  std::vector<uint32_t> disallowed_ports;
  // Ingot's own: CIDR networks whose addresses fetches may reach although the address rule refuses
  // them (loopback, private, ...): for test beds and sites whose image servers are internal.
  std::vector<std::string> allowed_networks;

  // [boot]: the boot service's southbound listener (api/boot/southbound.h). "" turns it off.
  std::string boot_listen = "127.0.0.1:9090";
  std::string boot_root;  // the tree served as '/'; default <data_dir>/boot (created if missing)
  // iPXE's first stages (undionly.kpxe, ipxe.efi, ...) served at '/' when the root has none of its
  // own: Debian's `ipxe` package puts them here. "" turns it off.
  std::string boot_firmware_dir = "/usr/lib/ipxe";
  // The same tree over TFTP (read-only; RFC 1350 with blksize, tsize, timeout, windowsize). "" (the
  // default) turns it off; operators use ":69" on the provisioning NIC.
  std::string tftp_listen;
  // [boot] content (boot/content_service.h): ISOs, OS trees, boot files, publications.
  std::string boot_content_dir;              // default <data_dir>/boot-content (created if missing)
  std::vector<std::string> boot_local_dirs;  // server directories ISOs may be added from by path
  std::string boot_rackhd_listen;            // RackHD image-service API (e.g. :7070); "" = off

  // [build]: the image builder (build/builder.h) and its IMS API under /apis/ims.
  bool build_enabled = true;
  std::string build_dir;  // default <data_dir>/build (recipes, jobs, artifacts, caches)
  std::string build_mirror = "http://deb.debian.org/debian";  // default Debian archive of recipes
  int build_max_jobs = 2;              // builds running at once; more wait in `creating`
  int build_job_timeout_s = 3600;      // a job running longer is ended (error, "timed out")
  std::string build_ssh_listen = "127.0.0.1";  // customize/debug jobs' sshd address (a port per job)
  std::string build_ssh_host;  // the host name jobs' connection_info gives users ("": ssh_listen)
  // Several nodes (a postgres catalog): the store every node puts recipe archives, artifacts and
  // finished logs in ("": none; then only the node that made a file serves it), and how long a
  // job's lease lasts before another node takes the job over.
  std::string build_store;
  int build_job_lease_s = 60;

  // [deploy]: OS volumes (deploy/volume_store.h) and their NBD exports (nbd/server.h). NBD is off
  // unless nbd_listen is set (e.g. "0.0.0.0:10809" on the provisioning network).
  std::string nbd_listen;
  std::string volumes_dir;  // default <data_dir>/volumes
  // The iSCSI target (iscsi/server.h), off unless iscsi_listen is set (e.g. "0.0.0.0:3260"); a
  // volume's target name is "<iscsi_iqn>:<volume>".
  std::string iscsi_listen;
  std::string iscsi_iqn = "iqn.2026-12.io.ingot";

  // [machines], [proxydhcp]
  MachinesConfig machines;
  ProxyDhcpConfig proxydhcp;

  // [catalog]
  CatalogConfig catalog;

  // [scrubber]
  ScrubberConfig scrubber;

  // [log]
  std::string log_level = "info";

  // The configured stores, or the embedded default.
  std::vector<store::StoreConfig> Stores() const;
};

// Parses TOML text over `config`; `origin` names it in errors. The file reader below and the fuzz
// target use it.
Status LoadConfigText(std::string_view text, const std::string& origin, Config& config);

// Reads a TOML file over `config`. kInvalidArgument naming the key for a bad value or unknown key.
Status LoadConfigFile(const std::string& path, Config& config);

// Parses "host:port" ("[::1]:9292" for IPv6). kInvalidArgument if malformed.
Result<std::pair<std::string, uint16_t>> ParseListen(const std::string& listen);

}  // namespace ingot::config
