// qlake init: write a commented project file (qlake.yaml) so that a cron line is just
// `qlake sync`.

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "command.h"
#include "pipeline_flags.h"
#include "qlake/core/strings.h"
#include "qlake/pipeline/project.h"

namespace qlake::cli {

Runner SetupInit(CLI::App& app) {
  struct Flags {
    std::string project = "qlake.yaml";
    std::string source, lake, cache, datasets, start;
    bool force = false;
  };
  auto f = std::make_shared<Flags>();
  app.add_option("--project", f->project, "File to write (default ./qlake.yaml)");
  app.add_option("--source", f->source, "Source: mirror folder or s3://flatfiles");
  app.add_option("--lake", f->lake, "Lake folder or URI");
  app.add_option("--cache", f->cache,
                 "Local flat-file cache: fetch each day into it before ingest "
                 "(default: none, ingest streams from the source)");
  app.add_option("--datasets", f->datasets,
                 "Comma-separated datasets (default: all four)");
  app.add_option("--start", f->start, "First day for empty datasets (YYYY-MM-DD)");
  app.add_flag("--force", f->force, "Overwrite an existing file");
  return [f](Context& ctx) -> arrow::Status {
    pipeline::InitOptions o;
    if (!f->source.empty()) o.source = f->source;
    if (!f->lake.empty()) o.lake = f->lake;
    o.cache = f->cache;
    if (!f->datasets.empty()) o.datasets = SplitCommaList(f->datasets);
    if (!f->start.empty()) {
      ARROW_ASSIGN_OR_RAISE(o.start, ParseDate(f->start));
    }
    if (std::filesystem::exists(f->project) && !f->force) {
      return arrow::Status::Invalid(f->project,
                                    " already exists; pass --force to overwrite it");
    }
    std::string text = pipeline::ProjectTemplate(o);
    // The template must itself be a valid project (catches bad --datasets too).
    ARROW_RETURN_NOT_OK(pipeline::ParseProject(text, f->project).status());
    {
      std::ofstream out(f->project, std::ios::binary | std::ios::trunc);
      out << text;
      if (!out) return arrow::Status::IOError("cannot write ", f->project);
    }
    if (!ctx.quiet) {
      std::cout << "wrote " << f->project
                << ": edit source, lake and datasets, then run `qlake sync`\n";
    }
    return arrow::Status::OK();
  };
}

}  // namespace qlake::cli
