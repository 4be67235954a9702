// Throughput check for the server, driven by curl: `http_server_bench FILE [PORT]` serves
//   PUT /sink        reads the body with a 1 MiB buffer and discards it (server cost only)
//   PUT /hash        the same, through MD5 and SHA-512 as an upload does
//   GET /file        FILE with sendfile(2)
//   GET /stream      FILE through a Reader (pread), as stores without a file descriptor are served
// and prints one line per exchange (bytes, MiB/s). Stops on SIGINT/SIGTERM.
#include <fcntl.h>
#include <signal.h>

#include <cstdio>
#include <vector>

#include "http/server.h"
#include "io/adapters.h"
#include "io/file.h"
#include "io/hash.h"

using namespace ingot;


int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE [PORT]\n", argv[0]);
    return 2;
  }
  std::string file = argv[1];
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);
  http::ServerOptions options;
  options.port = argc > 2 ? static_cast<uint16_t>(atoi(argv[2])) : 0;
  auto server = http::Server::Start(
      options,
      http::StreamEveryBody([&](http::Request& r) {
        http::Response resp;
        if (r.path == "/sink" || r.path == "/hash") {
          std::unique_ptr<io::Hasher> md5, sha;
          if (r.path == "/hash") {
            md5 = std::move(*io::Hasher::Create("md5"));
            sha = std::move(*io::Hasher::Create("sha512"));
          }
          std::vector<uint8_t> buf(1 << 20);
          for (;;) {
            auto n = r.body->Read(buf);
            if (!n.ok() || *n == 0) break;
            if (md5) {
              md5->Update(std::span<const uint8_t>(buf.data(), *n));
              sha->Update(std::span<const uint8_t>(buf.data(), *n));
            }
          }
          resp.status = 204;
        } else if (r.path == "/file") {
          auto fd = io::OpenFile(file, O_RDONLY);
          if (!fd.ok()) return resp;
          off_t size = lseek(fd->get(), 0, SEEK_END);
          resp.file = http::FileRange{std::move(*fd), 0, static_cast<uint64_t>(size)};
        } else if (r.path == "/stream") {
          auto src = io::FileSource::Open(file);
          if (!src.ok()) return resp;
          resp.stream_length = (*src)->Size();
          resp.stream = std::make_unique<io::SourceReader>(std::move(*src));
        } else {
          resp.status = 404;
        }
        return resp;
      }),
      [](const http::Exchange& e) {
        double secs = static_cast<double>(e.duration.count()) / 1e6;
        uint64_t bytes = e.bytes_in + e.bytes_out;
        fprintf(stderr, "%s %s %d bytes=%llu %.1f MiB/s\n", e.method.c_str(), e.target.c_str(),
                e.status, static_cast<unsigned long long>(bytes),
                secs > 0 ? static_cast<double>(bytes) / secs / 1048576 : 0);
      });
  if (!server.ok()) {
    fprintf(stderr, "%s\n", server.status().ToString().c_str());
    return 1;
  }
  printf("%u\n", (*server)->port());
  fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  (*server)->Stop();
  return 0;
}
