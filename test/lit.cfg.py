# -*- Python -*- lit configuration for the Cleave test suite.

import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "Cleave"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["CMakeLists.txt", "README.md", "lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.cleave_obj_root, "test")

# Captured names in FileCheck patterns do not leak across CHECK-LABELs.
config.environment["FILECHECK_OPTS"] = "-enable-var-scope --allow-unused-prefixes=false"

config.substitutions.append(("%cleave_src", config.cleave_src_root))
config.substitutions.append(("%cleave_obj", config.cleave_obj_root))
# The NumPy reference models the end-to-end tests compare against.
config.substitutions.append(
    ("%reference", "%python " + os.path.join(config.test_source_root, "e2e", "reference.py")))

# Hugging Face transformers, in the virtual environment scripts/setup makes:
# the import tests compare against it, and `prepare-text --tokenizer` runs
# the tokenizers package through it.
hf_python = os.path.join(config.cleave_obj_root, "python", "bin", "python")
if os.path.exists(hf_python):
    config.available_features.add("transformers")
    config.environment["CLEAVE_PYTHON"] = hf_python
    config.environment["HF_HUB_OFFLINE"] = "1"
    config.environment["TRANSFORMERS_OFFLINE"] = "1"
config.substitutions.append(
    ("%hf_check", hf_python + " " +
     os.path.join(config.test_source_root, "e2e", "hf", "hf_check.py")))

# Tests that start several ranks need an MPI launcher.
import shutil
if shutil.which("mpirun"):
    config.available_features.add("mpi")

# Starts a generated program's ranks on this machine, as cleavec train does.
mpirun = "mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS=1"
if os.geteuid() == 0:
    mpirun += " --allow-run-as-root"
config.substitutions.append(("%mpirun", mpirun))

llvm_config.use_default_substitutions()
llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP"])

tool_dirs = [config.cleave_tools_dir, config.llvm_tools_dir]
tools = ["cleave-opt", "cleave-translate", "cleavec", "cleave-models", "cleave-import", "not",
         "split-file", "FileCheck"]
llvm_config.add_tool_substitutions(tools, tool_dirs)

# Tests that build with nvcc need the CUDA backend (built when nvcc is found).
if config.cleave_cuda_enabled:
    config.available_features.add("cuda")
