// RUN: cleave-opt %s --cleave-plan-memory | cleave-translate --cleave-to-cuda --cleave-entry=second | FileCheck %s --check-prefix=ENTRY
// RUN: cleave-opt %s --cleave-plan-memory | cleave-translate --cleave-to-cuda --cleave-entry=second --cleave-no-main | FileCheck %s --check-prefix=NOMAIN

// Every function is emitted; --cleave-entry picks the one main runs, and
// --cleave-no-main leaves main out for linking into other code.
// ENTRY: cleave::rt::Status first(
// ENTRY: cleave::rt::Status second(
// ENTRY: int main(int argc, char **argv) {
// ENTRY-NEXT: return cleave::rt::runProgramMain(k_second_program, argc, argv);
// NOMAIN: cleave::rt::Status second(
// NOMAIN-NOT: int main

func.func @first(%a: tensor<4xf32> {cleave.input = "a"}) -> tensor<4xf32> {
  return %a : tensor<4xf32>
}

func.func @second(%a: tensor<4xf32> {cleave.input = "a"}) -> tensor<4xf32> {
  return %a : tensor<4xf32>
}
