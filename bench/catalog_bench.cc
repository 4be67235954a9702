// Catalog latency: GET of one image and a page of 25 over 1,000 images, as the API layer calls
// them, and the cost of a durable metadata commit (synchronous=FULL against NORMAL, measured on raw
// SQLite so the difference is the fsync alone).
//
//   build-*/bin/catalog_bench [--benchmark_filter=...]
//   INGOT_BENCH_ENGINE=postgres build-*/bin/catalog_bench   # the same on a throw-away PostgreSQL
// The SQLite database lives under $TMPDIR (default /tmp), so commit figures are that file system's.
// On PostgreSQL read the wall-clock column: the server's work is not this process's CPU time.

#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "catalog/sql/testing/engines.h"

namespace ingot::catalog {
namespace {

constexpr int kImages = 1000;

std::string Uuid(int n) {
  char buf[40];
  snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012d", n);
  return buf;
}

std::string TempDir() {
  const char* base = getenv("TMPDIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/ingot-catalog-bench-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) abort();
  return tmpl;
}

// 1,000 images spread over 10 projects and all visibilities, each with 3 tags and 4 properties,
// like a busy cloud's catalog.
struct Catalog {
  std::unique_ptr<testing::EngineDatabase> db;
  std::unique_ptr<SqlRepository> repo;

  Catalog() {
    const char* engine = getenv("INGOT_BENCH_ENGINE");
    auto created = testing::EngineDatabase::Create(engine != nullptr ? engine : "sqlite");
    if (!created.ok()) {
      fprintf(stderr, "catalog_bench: %s\n", created.status().ToString().c_str());
      abort();
    }
    db = std::move(*created);
    repo = std::move(*db->Open());
    for (int i = 0; i < kImages; ++i) {
      Image im;
      im.id = Uuid(i);
      im.name = "image-" + std::to_string(i % 97);
      catalog::StoredStatus::Restore(im, ImageStatus::kActive);
      im.visibility = static_cast<Visibility>(i % 4);
      im.owner = "project-" + std::to_string(i % 10);
      im.disk_format = i % 2 ? "qcow2" : "raw";
      im.container_format = "bare";
      im.size = 1'000'000 + i;
      im.virtual_size = 10'000'000 + i;
      im.checksum = "d41d8cd98f00b204e9800998ecf8427e";
      im.os_hash_algo = "sha512";
      im.os_hash_value = std::string(128, 'a');
      im.created_at = im.updated_at = 1'700'000'000'000'000 + int64_t{i} * 1'000'000;
      im.tags = {"x86_64", "tag-" + std::to_string(i % 13), "linux"};
      im.properties = {{"os_distro", i % 3 ? "debian" : "ubuntu"},
                       {"os_version", std::to_string(i % 5)},
                       {"hw_disk_bus", "virtio"},
                       {"architecture", "x86_64"}};
      im.locations = {{"file", im.id}};
      if (!repo->Add(im).ok()) abort();
      if (im.visibility == Visibility::kShared) {
        ImageMember m{im.id, "project-" + std::to_string((i + 1) % 10), MemberStatus::kAccepted, 1,
                      1};
        if (!repo->AddMember(m).ok()) abort();
      }
    }
  }
  ~Catalog() {
    repo.reset();
    db.reset();
  }
};

Catalog& Shared() {
  static Catalog c;  // destroyed at exit, which removes its database
  return c;
}

void BM_GetOne(benchmark::State& state) {
  auto& repo = *Shared().repo;
  int i = 0;
  for (auto _ : state) {
    auto im = repo.Get(Uuid(i++ % kImages));
    if (!im.ok()) state.SkipWithError("get failed");
    benchmark::DoNotOptimize(im);
  }
}
BENCHMARK(BM_GetOne)->UseRealTime();

void ListPage(benchmark::State& state, const std::vector<std::pair<std::string, std::string>>& p,
              const Viewer& viewer) {
  auto& repo = *Shared().repo;
  auto q = ParseListQuery(p);
  if (!q.ok()) {
    state.SkipWithError("bad query");
    return;
  }
  size_t n = 0;
  for (auto _ : state) {
    auto page = repo.List(*q, viewer);
    if (!page.ok()) state.SkipWithError("list failed");
    n = page->images.size();
    benchmark::DoNotOptimize(page);
  }
  state.counters["images"] = static_cast<double>(n);
}

void BM_ListFirstPageAdmin(benchmark::State& state) {
  ListPage(state, {}, Viewer{std::nullopt, true});
}
BENCHMARK(BM_ListFirstPageAdmin)->UseRealTime();

void BM_ListFirstPageProject(benchmark::State& state) {
  ListPage(state, {}, Viewer{"project-3", false});
}
BENCHMARK(BM_ListFirstPageProject)->UseRealTime();

void BM_ListMiddlePageProject(benchmark::State& state) {
  ListPage(state, {{"marker", Uuid(503)}}, Viewer{"project-3", false});
}
BENCHMARK(BM_ListMiddlePageProject)->UseRealTime();

void BM_ListSortedByNameProject(benchmark::State& state) {
  ListPage(state, {{"sort", "name:asc,size:desc"}}, Viewer{"project-3", false});
}
BENCHMARK(BM_ListSortedByNameProject)->UseRealTime();

void BM_ListFilteredProject(benchmark::State& state) {
  ListPage(state, {{"os_distro", "debian"}, {"tag", "linux"}, {"disk_format", "qcow2"}},
           Viewer{"project-3", false});
}
BENCHMARK(BM_ListFilteredProject)->UseRealTime();

void BM_SaveOne(benchmark::State& state) {
  auto& repo = *Shared().repo;
  for (auto _ : state) {
    auto im = repo.Get(Uuid(7));
    im->updated_at += 1;
    if (!repo.Save(*im).ok()) state.SkipWithError("save failed");
  }
}
BENCHMARK(BM_SaveOne)->UseRealTime();

// One small transaction per iteration on raw SQLite in WAL mode: the price of fsync per commit.
void BM_RawCommit(benchmark::State& state) {
  std::string dir = TempDir();
  sqlite3* db = nullptr;
  sqlite3_open((dir + "/raw.db").c_str(), &db);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
  sqlite3_exec(db, state.range(0) ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
               nullptr, nullptr, nullptr);
  sqlite3_exec(db, "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)", nullptr, nullptr, nullptr);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO t (v) VALUES ('x')", -1, &st, nullptr);
  for (auto _ : state) {
    sqlite3_step(st);
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  std::filesystem::remove_all(dir);
  state.SetLabel(state.range(0) ? "synchronous=FULL" : "synchronous=NORMAL");
}
BENCHMARK(BM_RawCommit)->Arg(0)->Arg(1)->UseRealTime();

}  // namespace
}  // namespace ingot::catalog

BENCHMARK_MAIN();
