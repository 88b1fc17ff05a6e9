// qlake status: per dataset the watermark, committed / pending / missing / republished
// days, quarantine counts and the last run; per Qlib store its calendar and symbols.
// Read-only: takes no lock.

#include <iostream>
#include <memory>

#include "command.h"
#include "pipeline_flags.h"
#include "qlake/pipeline/pipeline.h"

namespace qlake::cli {

Runner SetupStatus(CLI::App& app) {
  auto f = std::make_shared<PipelineFlags>();
  AddPipelineFlags(app, *f, /*writes=*/false);
  app.add_option("--datasets", f->datasets,
                 "Datasets to show without a project file (default: those in the lake)");
  return [f](Context& ctx) -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(auto o, MakePipelineOptions(*f, ctx));
    ARROW_ASSIGN_OR_RAISE(auto s, pipeline::GetStatus(o));
    if (f->json) {
      std::cout << s.ToJson().dump(2) << "\n";
    } else {
      std::cout << s.ToText();
    }
    return arrow::Status::OK();
  };
}

}  // namespace qlake::cli
