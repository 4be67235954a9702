#include "build/recipe.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace ingot::build {
namespace {

class RecipeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ingot-recipe-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& rel, const std::string& text) {
    std::filesystem::create_directories((dir_ / rel).parent_path());
    std::ofstream(dir_ / rel) << text;
  }
  Status Load(const std::map<std::string, std::string>& dict = {}) {
    auto r = LoadMmdebstrapRecipe(dir_.string(), dict);
    if (r.ok()) recipe_ = *r;
    return r.status();
  }
  std::filesystem::path dir_;
  MmdebstrapRecipe recipe_;
};

TEST(TemplateTest, ReplacesNamesAndNamesUnknownOnesWithTheirLine) {
  auto r = RenderTemplate("a {{ x }} b {{y}}\n", "f", {{"x", "1"}, {"y", "2"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "a 1 b 2\n");
  auto bad = RenderTemplate("one\ntwo\nthree {{ nope }}\n", "recipe.toml", {{"x", "1"}});
  EXPECT_EQ(bad.status().message(),
            "recipe.toml:3: template variable 'nope' is not in the template_dictionary");
  auto open = RenderTemplate("a\n{{ x\n}}", "s.sh", {{"x", "1"}});
  EXPECT_EQ(open.status().message(), "s.sh:2: '{{' without a closing '}}' on the same line");
  auto expr = RenderTemplate("{{ x | upper }}", "s.sh", {{"x", "1"}});
  EXPECT_FALSE(expr.ok());
}

TEST_F(RecipeTest, FullRecipe) {
  Write("recipe.toml", R"(suite = "{{ suite }}"
variant = "minbase"
packages = ["linux-image-amd64", "systemd-sysv"]
kernel_parameters = "console=ttyS0"
[hooks]
customize = ["echo hi"]
[[files]]
source = "files/motd"
path = "/etc/motd"
mode = "0600"
[[steps]]
name = "marker"
script = "steps/marker.sh"
args = ["{{ marker }}"]
[[steps]]
name = "early"
stage = "pre"
run = "echo {{ marker }}"
)");
  Write("files/motd", "hello\n");
  Write("steps/marker.sh", "#!/bin/sh\necho {{ marker }} > /etc/issue\n");
  ASSERT_TRUE(Load({{"suite", "bookworm"}, {"marker", "M1"}}).ok());
  EXPECT_EQ(recipe_.suite, "bookworm");
  EXPECT_EQ(recipe_.packages.size(), 2u);
  ASSERT_EQ(recipe_.files.size(), 1u);
  EXPECT_EQ(recipe_.files[0].mode, 0600u);
  ASSERT_EQ(recipe_.steps.size(), 2u);
  EXPECT_EQ(recipe_.steps[0].stage, "post");
  EXPECT_EQ(recipe_.steps[0].script, "#!/bin/sh\necho M1 > /etc/issue\n");
  EXPECT_EQ(recipe_.steps[0].args, std::vector<std::string>{"M1"});
  EXPECT_EQ(recipe_.steps[1].stage, "pre");
  EXPECT_EQ(recipe_.steps[1].origin, "recipe.toml:15");
  EXPECT_EQ(recipe_.hooks["customize"].size(), 1u);
}

TEST_F(RecipeTest, ErrorsNameFileAndLine) {
  struct Case {
    std::string toml;
    std::string message;
  };
  std::vector<Case> cases = {
      {"variant = \"minbase\"\n", "recipe.toml:1: 'suite' is required"},
      {"suite = \"bookworm\"\n\npackages = [\"ok\", \"Bad Name\"]\n",
       "recipe.toml:3: 'Bad Name' is not a Debian package name"},
      {"suite = \"bookworm\"\nvariant = \"tiny\"\n", "recipe.toml:2: variant 'tiny' is not"},
      {"suite = \"bookworm\"\nsuit = 1\n", "recipe.toml:2: unknown key 'suit'"},
      {"suite = \"bookworm\"\npackages = [\n", "recipe.toml:"},
      {"suite = \"bookworm\"\n[[files]]\nsource = \"../etc/passwd\"\npath = \"/x\"\n",
       "recipe.toml:2: files.source '../etc/passwd' must be a path inside the archive"},
      {"suite = \"bookworm\"\n[[files]]\nsource = \"missing\"\npath = \"/x\"\n",
       "recipe.toml:2: missing: no such file in the recipe archive"},
      {"suite = \"bookworm\"\n[[steps]]\nname = \"a\"\nrun = \"x\"\n[[steps]]\nname = \"a\"\n"
       "run = \"y\"\n",
       "recipe.toml:5: step name 'a' is used twice"},
      {"suite = \"bookworm\"\n[[steps]]\nname = \"a\"\n",
       "recipe.toml:2: step 'a' needs exactly one of script or run"},
      {"suite = \"bookworm\"\n[[steps]]\nname = \"a\"\nstage = \"mid\"\nrun = \"x\"\n",
       "recipe.toml:2: step 'a': stage must be"},
      {"suite = \"{{ release }}\"\n", "recipe.toml:1: template variable 'release'"},
  };
  for (const auto& c : cases) {
    Write("recipe.toml", c.toml);
    Status s = Load();
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << c.toml;
    EXPECT_EQ(s.message().rfind(c.message, 0), 0u) << s.message() << "\nwanted: " << c.message;
  }
}

TEST_F(RecipeTest, StepScriptTemplateErrorsNameTheScript) {
  Write("recipe.toml", "suite = \"bookworm\"\n[[steps]]\nname = \"s\"\nscript = \"s.sh\"\n");
  Write("s.sh", "#!/bin/sh\n\necho {{ who }}\n");
  Status s = Load();
  EXPECT_EQ(s.message(), "s.sh:3: template variable 'who' is not in the template_dictionary");
}

TEST_F(RecipeTest, SymlinkedFilesAreRefused) {
  Write("recipe.toml", "suite = \"bookworm\"\n[[files]]\nsource = \"f\"\npath = \"/x\"\n");
  ASSERT_EQ(symlink("/etc/passwd", (dir_ / "f").c_str()), 0);
  Status s = Load();
  EXPECT_EQ(s.message(), "recipe.toml:2: f: not a regular file");
}

TEST(SafePathTest, Paths) {
  EXPECT_TRUE(IsSafeRelativePath("a/b.sh"));
  EXPECT_FALSE(IsSafeRelativePath("/a"));
  EXPECT_FALSE(IsSafeRelativePath("a/../../b"));
  EXPECT_FALSE(IsSafeRelativePath(".."));
  EXPECT_FALSE(IsSafeRelativePath("a//b"));
  EXPECT_FALSE(IsSafeRelativePath(""));
}

}  // namespace
}  // namespace ingot::build
