// Property protections (Glance's property_protection_file): which roles — or which policy rules —
// may create, read, update and delete the image properties whose names match a regular
// expression. The file is Glance's INI shape:
//
//   [^x_billing_.*]          ; a regular expression, searched in the property name
//   create = admin           ; roles (rule_format "roles"), "@" anyone, "!" no one, empty: no one
//   read = admin,member
//   update = admin
//   delete = !
//
// or, with rule_format "policies", one policy rule name per operation (checked with auth::Policy).
// The first section (in file order) whose expression is found in a property name decides for it;
// a property no section matches may not be touched by anyone (so files end with a catch-all [.*]).
// Only the free-form extra properties are protected, never the core attributes.
//
// A file that is missing, malformed, names an invalid expression, lacks an operation, or mixes '@'
// and '!' is refused when loaded (the daemon does not start), as Glance refuses it.
//
// Threads: const methods may be called from any thread.
#pragma once

#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "auth/context.h"
#include "auth/policy.h"
#include "catalog/image.h"
#include "common/result.h"

namespace ingot::service {

enum class PropertyOperation { kCreate, kRead, kUpdate, kDelete };

class PropertyProtections {
 public:
  enum class Format { kRoles, kPolicies };

  // Parses the file's text. `policy` is consulted by the "policies" format (it must outlive this).
  static Result<std::unique_ptr<PropertyProtections>> Parse(std::string_view text, Format format,
                                                            const auth::Policy* policy);
  static Result<std::unique_ptr<PropertyProtections>> Load(const std::string& path, Format format,
                                                           const auth::Policy* policy);

  bool Allows(std::string_view property, PropertyOperation op,
              const auth::RequestContext& ctx) const;

  // Removes from `image` the extra properties `ctx` may not read.
  void FilterReadable(catalog::Image& image, const auth::RequestContext& ctx) const;

  // Checks a change of `before`'s extra properties into `after`'s (before = nullptr: a new image),
  // as Glance sees it: a property the caller cannot read does not exist for it, so setting one is a
  // create. kPermissionDenied with Glance's "Attribute '<name>' is reserved." for the first
  // refused one.
  Status CheckChange(const catalog::Image* before, const catalog::Image& after,
                     const auth::RequestContext& ctx) const;

 private:
  struct Rule {
    std::string expression;
    std::regex regex;
    std::vector<std::string> permissions[4];  // by PropertyOperation
  };
  PropertyProtections(Format format, const auth::Policy* policy)
      : format_(format), policy_(policy) {}

  Format format_;
  const auth::Policy* policy_;
  std::vector<Rule> rules_;
};

}  // namespace ingot::service
