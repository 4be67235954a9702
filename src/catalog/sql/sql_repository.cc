#include "catalog/sql/sql_repository.h"

#include <limits>
#include <unordered_map>
#include <utility>

#include "catalog/sql/list_sql.h"
#include "common/time.h"

namespace ingot::catalog {

using sql::Rows;
using sql::Session;
using sql::Sql;
using sql::Value;

namespace {

Value Opt(const std::optional<std::string>& s) {
  if (!s) return nullptr;
  return *s;
}

Value Opt(const std::optional<uint64_t>& v) {
  if (!v) return nullptr;
  return static_cast<int64_t>(*v);
}

// Both engines store signed 64-bit integers; a larger unsigned value would wrap on the way in.
Status CheckStorable(const Image& im) {
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if ((im.size && *im.size > kMax) || (im.virtual_size && *im.virtual_size > kMax) ||
      im.min_disk > kMax || im.min_ram > kMax) {
    return InvalidArgument("image " + im.id + ": a size is larger than 2^63-1");
  }
  if (im.id.empty()) return InvalidArgument("image id is empty");
  return Status::Ok();
}

// The mutable columns, in the order both INSERT and UPDATE name them.
std::vector<Value> MutableValues(const Image& im) {
  bool deleted = im.status() == ImageStatus::kDeleted;
  return {Opt(im.name),
          std::string(StatusName(im.status())),
          std::string(VisibilityName(im.visibility)),
          int64_t{im.is_protected},
          int64_t{im.os_hidden},
          Opt(im.owner),
          Opt(im.disk_format),
          Opt(im.container_format),
          Opt(im.size),
          Opt(im.virtual_size),
          static_cast<int64_t>(im.min_disk),
          static_cast<int64_t>(im.min_ram),
          Opt(im.checksum),
          Opt(im.os_hash_algo),
          Opt(im.os_hash_value),
          im.updated_at,
          deleted ? Value(im.updated_at) : Value(nullptr),
          int64_t{deleted}};
}

Result<Image> ReadImage(const Rows& r) {
  Image im;
  im.id = r.Text(0);
  im.name = r.OptText(1);
  auto status = ParseStatus(r.Text(2));
  auto visibility = ParseVisibility(r.Text(3));
  if (!status || !visibility) {
    return Corruption("image " + im.id + ": unknown status or visibility in the catalog");
  }
  StoredStatus::Restore(im, *status);
  im.visibility = *visibility;
  im.is_protected = r.Bool(4);
  im.os_hidden = r.Bool(5);
  im.owner = r.OptText(6);
  im.disk_format = r.OptText(7);
  im.container_format = r.OptText(8);
  if (!r.IsNull(9)) im.size = static_cast<uint64_t>(r.Int(9));
  if (!r.IsNull(10)) im.virtual_size = static_cast<uint64_t>(r.Int(10));
  im.min_disk = static_cast<uint64_t>(r.Int(11));
  im.min_ram = static_cast<uint64_t>(r.Int(12));
  im.checksum = r.OptText(13);
  im.os_hash_algo = r.OptText(14);
  im.os_hash_value = r.OptText(15);
  im.created_at = r.Int(16);
  im.updated_at = r.Int(17);
  im.version = r.Int(18);
  return im;
}

std::string NotDeleted(Session& s, std::string_view table = "images") {
  return std::string(table) + ".deleted = " + std::string(s.dialect().False());
}

// The three queries that read the tags, properties and locations of the images whose ids are
// `ids` (`image_id` followed by `in`: " = ?" or " IN (?,...)").
std::vector<std::pair<std::string, std::vector<Value>>> ChildQueries(const std::string& in,
                                                                     const std::vector<Value>& ids) {
  return {{"SELECT image_id, value FROM image_tags WHERE image_id" + in, ids},
          {"SELECT image_id, name, value FROM image_properties WHERE image_id" + in, ids},
          {"SELECT image_id, store, key, metadata FROM image_locations WHERE image_id" + in +
               " ORDER BY image_id, position",
           ids}};
}

// Reads the rows of ChildQueries (rows[first], rows[first + 1], rows[first + 2]) into `images`;
// rows of other images are skipped.
Status ReadChildren(std::vector<std::unique_ptr<Rows>>& rows, size_t first,
                    std::vector<Image>& images) {
  std::unordered_map<std::string_view, Image*> by_id;
  by_id.reserve(images.size());
  for (Image& im : images) by_id.emplace(im.id, &im);
  for (size_t table = 0; table < 3; ++table) {
    Rows& r = *rows[first + table];
    while (true) {
      INGOT_ASSIGN_OR_RETURN(bool row, r.Next());
      if (!row) break;
      auto it = by_id.find(r.Text(0));
      if (it == by_id.end()) continue;
      if (table == 0) {
        it->second->tags.insert(r.Text(1));
      } else if (table == 1) {
        it->second->properties.emplace(r.Text(1), r.Text(2));
      } else {
        it->second->locations.push_back({r.Text(1), r.Text(2), r.Text(3)});
      }
    }
  }
  return Status::Ok();
}

// Fills tags, properties and locations of `images` with one query per table for the whole page,
// sent as one batch (on PostgreSQL one round trip for the three).
Status LoadChildren(Session& s, std::vector<Image>& images) {
  if (images.empty()) return Status::Ok();
  std::vector<Value> ids;
  ids.reserve(images.size());
  for (Image& im : images) ids.emplace_back(im.id);
  // One image is a common case: `= ?` keeps it one cached statement.
  std::string in = ids.size() == 1 ? " = ?" : " IN (" + sql::Placeholders(ids.size()) + ")";
  INGOT_ASSIGN_OR_RETURN(auto rows, s.QueryBatch(ChildQueries(in, ids)));
  return ReadChildren(rows, 0, images);
}

// Replaces the tags, properties and locations stored for `im`.
Status WriteChildren(Session& s, const Image& im, bool replace) {
  if (replace) {
    for (const char* text : {"DELETE FROM image_tags WHERE image_id = ?",
                             "DELETE FROM image_properties WHERE image_id = ?",
                             "DELETE FROM image_locations WHERE image_id = ?"}) {
      INGOT_RETURN_IF_ERROR(s.Exec(text, {im.id}).status());
    }
  }
  for (const auto& tag : im.tags) {
    INGOT_RETURN_IF_ERROR(
        s.Exec("INSERT INTO image_tags (image_id, value) VALUES (?, ?)", {im.id, tag}).status());
  }
  for (const auto& [name, value] : im.properties) {
    INGOT_RETURN_IF_ERROR(
        s.Exec("INSERT INTO image_properties (image_id, name, value) VALUES (?, ?, ?)",
               {im.id, name, value})
            .status());
  }
  int64_t position = 0;
  for (const auto& loc : im.locations) {
    INGOT_RETURN_IF_ERROR(
        s.Exec("INSERT INTO image_locations (image_id, position, store, key, metadata) "
               "VALUES (?, ?, ?, ?, ?)",
               {im.id, position++, loc.store, loc.key, loc.metadata})
            .status());
  }
  return Status::Ok();
}

Result<std::optional<Image>> FindImage(Session& s, const std::string& id,
                                       bool include_deleted = false) {
  INGOT_ASSIGN_OR_RETURN(auto r, s.Query(std::string("SELECT ") + sql::kImageColumns +
                                             " FROM images WHERE images.id = ?" +
                                             (include_deleted ? "" : " AND " + NotDeleted(s)),
                                         {id}));
  INGOT_ASSIGN_OR_RETURN(bool row, r->Next());
  if (!row) return std::optional<Image>();
  INGOT_ASSIGN_OR_RETURN(Image im, ReadImage(*r));
  return std::optional<Image>(std::move(im));
}

Result<std::optional<MemberStatus>> FindMembership(Session& s, const std::string& image_id,
                                                   const std::string& member) {
  INGOT_ASSIGN_OR_RETURN(
      auto r, s.Query("SELECT status FROM image_members WHERE image_id = ? AND member = ?",
                      {image_id, member}));
  INGOT_ASSIGN_OR_RETURN(bool row, r->Next());
  if (!row) return std::optional<MemberStatus>();
  auto status = ParseMemberStatus(r->Text(0));
  if (!status) return Corruption("image " + image_id + ": unknown member status");
  return std::optional<MemberStatus>(*status);
}

Status CheckImageExists(Session& s, const std::string& id) {
  INGOT_ASSIGN_OR_RETURN(auto r,
                         s.Query("SELECT 1 FROM images WHERE id = ? AND " + NotDeleted(s), {id}));
  INGOT_ASSIGN_OR_RETURN(bool row, r->Next());
  if (!row) return NotFound("No image found with ID " + id);
  return Status::Ok();
}

Result<std::vector<Image>> RunImageQuery(Session& s, const Sql& q) {
  INGOT_ASSIGN_OR_RETURN(auto r, s.Query(q.text, q.args));
  std::vector<Image> images;
  while (true) {
    INGOT_ASSIGN_OR_RETURN(bool row, r->Next());
    if (!row) break;
    INGOT_ASSIGN_OR_RETURN(Image im, ReadImage(*r));
    images.push_back(std::move(im));
  }
  return images;
}

ImageMember ReadMember(const Rows& r) {
  ImageMember m;
  m.image_id = r.Text(0);
  m.member = r.Text(1);
  m.status = ParseMemberStatus(r.Text(2)).value_or(MemberStatus::kPending);
  m.created_at = r.Int(3);
  m.updated_at = r.Int(4);
  return m;
}

}  // namespace

SqlRepository::~SqlRepository() = default;

Status SqlRepository::Add(const Image& image) {
  INGOT_RETURN_IF_ERROR(CheckStorable(image));
  return db_->Write([&](Session& s) -> Status {
    std::vector<Value> values = MutableValues(image);
    values.emplace_back(image.id);
    values.emplace_back(image.created_at);
    auto n = s.Exec(
        "INSERT INTO images (name, status, visibility, protected, os_hidden, owner, "
        "disk_format, container_format, size, virtual_size, min_disk, min_ram, checksum, "
        "os_hash_algo, os_hash_value, updated_at, deleted_at, deleted, id, created_at, "
        "version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
        values);
    if (n.status().code() == Code::kAlreadyExists) {
      return AlreadyExists("image " + image.id + " exists or existed");
    }
    INGOT_RETURN_IF_ERROR(n.status());
    return WriteChildren(s, image, /*replace=*/false);
  });
}

Result<Image> SqlRepository::Get(const std::string& id) {
  std::vector<Image> one;
  // One read transaction: the image and its children come from the same snapshot. The children
  // are asked for by the id, beside the image's row, in one batch: on PostgreSQL a GET is one
  // round trip (BEGIN, the four queries and Sync in one pipeline; the read's COMMIT is not waited
  // for). An unknown id costs three empty index probes.
  INGOT_RETURN_IF_ERROR(db_->Read([&](Session& s) -> Status {
    std::vector<std::pair<std::string, std::vector<Value>>> batch = {
        {std::string("SELECT ") + sql::kImageColumns + " FROM images WHERE images.id = ? AND " +
             NotDeleted(s),
         {id}}};
    for (auto& q : ChildQueries(" = ?", {id})) batch.push_back(std::move(q));
    INGOT_ASSIGN_OR_RETURN(auto rows, s.QueryBatch(batch));
    INGOT_ASSIGN_OR_RETURN(bool row, rows[0]->Next());
    if (!row) return NotFound("image " + id + " not in the catalog");
    INGOT_ASSIGN_OR_RETURN(Image im, ReadImage(*rows[0]));
    one.push_back(std::move(im));
    return ReadChildren(rows, 1, one);
  }));
  return std::move(one[0]);
}

Status SqlRepository::Save(const Image& image) {
  INGOT_RETURN_IF_ERROR(CheckStorable(image));
  return db_->Write([&](Session& s) -> Status {
    std::vector<Value> values = MutableValues(image);
    values.emplace_back(image.id);
    values.emplace_back(image.version);
    INGOT_ASSIGN_OR_RETURN(
        int64_t changed,
        s.Exec("UPDATE images SET name = ?, status = ?, visibility = ?, protected = ?, "
               "os_hidden = ?, owner = ?, disk_format = ?, container_format = ?, size = ?, "
               "virtual_size = ?, min_disk = ?, min_ram = ?, checksum = ?, os_hash_algo = ?, "
               "os_hash_value = ?, updated_at = ?, deleted_at = ?, deleted = ?, "
               "version = version + 1 WHERE id = ? AND version = ? AND " +
                   NotDeleted(s),
               values));
    if (changed == 0) {
      INGOT_RETURN_IF_ERROR(CheckImageExists(s, image.id));
      return Conflict("Image " + image.id + " was changed by another request (version " +
                      std::to_string(image.version) + " is stale)");
    }
    return WriteChildren(s, image, /*replace=*/true);
  });
}

Status SqlRepository::Remove(const std::string& id) {
  return db_->Write([&](Session& s) -> Status {
    int64_t now = NowMicros();
    INGOT_ASSIGN_OR_RETURN(
        int64_t changed,
        s.Exec("UPDATE images SET status = 'deleted', deleted = " + std::string(s.dialect().True()) +
                   ", deleted_at = ?, updated_at = ?, version = version + 1 WHERE id = ? AND " +
                   NotDeleted(s),
               {now, now, id}));
    if (changed == 0) return NotFound("No image found with ID " + id);
    return Status::Ok();
  });
}

Result<ImagePage> SqlRepository::List(const ListQuery& query, const Viewer& viewer) {
  if (query.limit < 0) return InvalidArgument("limit param must be positive");
  int limit = std::min(query.limit, kMaxListLimit);
  ImagePage page;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Session& s) -> Status {
    const sql::Dialect& d = s.dialect();
    Sql q;
    q.text = std::string("SELECT ") + sql::kImageColumns + " FROM images WHERE " + NotDeleted(s);
    sql::AppendVisibility(q, d, query, viewer);
    sql::AppendFilters(q, d, query);
    if (query.marker) {
      // Glance answers 400 for a marker that names no image the caller may see. Admins may also
      // page on from an image deleted meanwhile (Glance lets contexts that can see deleted images
      // do so); its row is kept, so its sort values still place the next page.
      INGOT_ASSIGN_OR_RETURN(std::optional<Image> marker,
                             FindImage(s, *query.marker, /*include_deleted=*/viewer.is_admin));
      bool visible = false;
      if (marker) {
        std::optional<MemberStatus> membership;
        if (viewer.project && !viewer.is_admin && marker->visibility == Visibility::kShared) {
          INGOT_ASSIGN_OR_RETURN(membership, FindMembership(s, marker->id, *viewer.project));
        }
        visible = IsVisible(*marker, viewer, membership);
      }
      if (!visible) return InvalidArgument("No image found with ID " + *query.marker);
      sql::AppendAfterMarker(q, d, query.sort, *marker);
    }
    if (limit == 0) return Status::Ok();
    sql::AppendOrder(q, d, query.sort);
    // One more than asked says whether a next page exists. The limit is written into the text,
    // not bound: a planner that knows it reads 26 rows walks an index in order and stops, and
    // PostgreSQL then keeps one generic plan for the prepared statement. With `LIMIT $n` it
    // costed the generic plan for 10 % of the table, never chose it, and planned every execution
    // anew (pg_prepared_statements: 0 generic, 8 custom; pgbench, one client, the project list:
    // 5.3-6.9 ms -> 1.8-3.8 ms on a loaded host). `limit` is an integer of ours, capped at
    // kMaxListLimit, so the statement shapes stay few.
    q.text += " LIMIT " + std::to_string(int64_t{limit} + 1);
    INGOT_ASSIGN_OR_RETURN(page.images, RunImageQuery(s, q));
    if (static_cast<int>(page.images.size()) > limit) {
      page.images.resize(limit);
      page.next_marker = page.images.back().id;
    }
    return LoadChildren(s, page.images);
  }));
  return page;
}

Result<std::vector<Image>> SqlRepository::ListByStatus(const std::vector<ImageStatus>& statuses) {
  if (statuses.empty()) return std::vector<Image>();
  std::vector<Image> images;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Session& s) -> Status {
    Sql q;
    q.text = std::string("SELECT ") + sql::kImageColumns + " FROM images WHERE " + NotDeleted(s) +
             " AND images.status IN (" + sql::Placeholders(statuses.size()) +
             ") ORDER BY images.created_at, images.id";
    for (ImageStatus st : statuses) q.args.emplace_back(std::string(StatusName(st)));
    INGOT_ASSIGN_OR_RETURN(images, RunImageQuery(s, q));
    // Children in slices, keeping each statement's parameter count modest.
    constexpr size_t kSlice = 200;
    for (size_t i = 0; i < images.size(); i += kSlice) {
      size_t n = std::min(kSlice, images.size() - i);
      std::vector<Image> slice(std::make_move_iterator(images.begin() + i),
                               std::make_move_iterator(images.begin() + i + n));
      INGOT_RETURN_IF_ERROR(LoadChildren(s, slice));
      std::move(slice.begin(), slice.end(), images.begin() + i);
    }
    return Status::Ok();
  }));
  return images;
}

Result<std::map<ImageStatus, int64_t>> SqlRepository::CountByStatus() {
  std::map<ImageStatus, int64_t> counts;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Session& s) -> Status {
    INGOT_ASSIGN_OR_RETURN(
        auto r,
        s.Query("SELECT status, count(*) FROM images WHERE " + NotDeleted(s) + " GROUP BY status",
                {}));
    while (true) {
      INGOT_ASSIGN_OR_RETURN(bool row, r->Next());
      if (!row) break;
      auto status = ParseStatus(r->Text(0));
      if (!status) return Corruption("unknown image status '" + r->Text(0) + "' in the catalog");
      counts[*status] = r->Int(1);
    }
    return Status::Ok();
  }));
  return counts;
}

Status SqlRepository::AddMember(const ImageMember& member) {
  return db_->Write([&](Session& s) -> Status {
    INGOT_RETURN_IF_ERROR(CheckImageExists(s, member.image_id));
    auto n = s.Exec(
        "INSERT INTO image_members (image_id, member, status, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?)",
        {member.image_id, member.member, std::string(MemberStatusName(member.status)),
         member.created_at, member.updated_at});
    if (n.status().code() == Code::kAlreadyExists) {
      return AlreadyExists("Member " + member.member + " already exists on image " +
                           member.image_id);
    }
    return n.status();
  });
}

Status SqlRepository::UpdateMember(const ImageMember& member) {
  return db_->Write([&](Session& s) -> Status {
    INGOT_RETURN_IF_ERROR(CheckImageExists(s, member.image_id));
    INGOT_ASSIGN_OR_RETURN(int64_t changed,
                           s.Exec("UPDATE image_members SET status = ?, updated_at = ? "
                                  "WHERE image_id = ? AND member = ?",
                                  {std::string(MemberStatusName(member.status)),
                                   member.updated_at, member.image_id, member.member}));
    if (changed == 0) {
      return NotFound("Member " + member.member + " not found on image " + member.image_id);
    }
    return Status::Ok();
  });
}

Status SqlRepository::RemoveMember(const std::string& image_id, const std::string& member) {
  return db_->Write([&](Session& s) -> Status {
    INGOT_RETURN_IF_ERROR(CheckImageExists(s, image_id));
    INGOT_ASSIGN_OR_RETURN(
        int64_t changed,
        s.Exec("DELETE FROM image_members WHERE image_id = ? AND member = ?", {image_id, member}));
    if (changed == 0) return NotFound("Member " + member + " not found on image " + image_id);
    return Status::Ok();
  });
}

Result<ImageMember> SqlRepository::GetMember(const std::string& image_id,
                                             const std::string& member) {
  ImageMember out;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Session& s) -> Status {
    INGOT_RETURN_IF_ERROR(CheckImageExists(s, image_id));
    INGOT_ASSIGN_OR_RETURN(auto r, s.Query("SELECT image_id, member, status, created_at, "
                                           "updated_at FROM image_members WHERE image_id = ? "
                                           "AND member = ?",
                                           {image_id, member}));
    INGOT_ASSIGN_OR_RETURN(bool row, r->Next());
    if (!row) return NotFound("Member " + member + " not found on image " + image_id);
    out = ReadMember(*r);
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<ImageMember>> SqlRepository::ListMembers(const std::string& image_id) {
  std::vector<ImageMember> out;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Session& s) -> Status {
    INGOT_RETURN_IF_ERROR(CheckImageExists(s, image_id));
    INGOT_ASSIGN_OR_RETURN(auto r, s.Query("SELECT image_id, member, status, created_at, "
                                           "updated_at FROM image_members WHERE image_id = ? "
                                           "ORDER BY member",
                                           {image_id}));
    while (true) {
      INGOT_ASSIGN_OR_RETURN(bool row, r->Next());
      if (!row) break;
      out.push_back(ReadMember(*r));
    }
    return Status::Ok();
  }));
  return out;
}

}  // namespace ingot::catalog
