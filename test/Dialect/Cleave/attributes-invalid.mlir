// RUN: cleave-opt %s -split-input-file -verify-diagnostics

// expected-error@+1 {{'cleave.param' of argument 0 must be a non-empty string naming the tensor}}
func.func @param_not_string(%w: tensor<4xf32> {cleave.param = 1 : i64}) {
  return
}

// -----

// expected-error@+1 {{'cleave.param' of argument 0 must be a non-empty string naming the tensor}}
func.func @param_empty(%w: tensor<4xf32> {cleave.param = ""}) {
  return
}

// -----

// expected-error@+1 {{parameter 'w' (argument 0) must have f64, f32, bf16 or f16 elements, got 'tensor<4xi32>'}}
func.func @param_integer(%w: tensor<4xi32> {cleave.param = "w"}) {
  return
}

// -----

// expected-error@+1 {{parameter 'w' (argument 0) must have f64, f32, bf16 or f16 elements, got 'tensor<4xf8E4M3FN>'}}
func.func @param_fp8(%w: tensor<4xf8E4M3FN> {cleave.param = "w"}) {
  return
}

// -----

// expected-error@+1 {{tensor 'x' (argument 0) must be a statically shaped tensor, got 'tensor<*xf32>'}}
func.func @input_unranked(%x: tensor<*xf32> {cleave.input = "x"}) {
  return
}

// -----

// expected-error@+1 {{tensor 'n' (argument 0) must be a statically shaped tensor, got 'i32'}}
func.func @input_scalar(%n: i32 {cleave.input = "n"}) {
  return
}

// -----

// expected-error@+1 {{cleave attribute 'cleave.param' is not valid on result 0}}
func.func @result_attr(%x: tensor<4xf32>) -> (tensor<4xf32> {cleave.param = "y"}) {
  return %x : tensor<4xf32>
}

// -----

// The runtime reduce-scatters a pending sum along cleave.scatter_dim: a
// dimension of the result, and only of a pending sum.

cleave.mesh @mesh(dp = 2)
// expected-error@+1 {{'cleave.scatter_dim' of result 0 must be a dimension of the result}}
func.func @scatter_outside(%x: tensor<4xf32>) -> (tensor<4xf32> {cleave.block = #cleave.sharding<@mesh, [[]], partial = [dp]>, cleave.scatter_dim = 1 : i64}) {
  return %x : tensor<4xf32>
}

// -----

cleave.mesh @mesh(dp = 2)
// expected-error@+1 {{'cleave.scatter_dim' of result 0 needs a pending sum to scatter (a cleave.block with partial axes)}}
func.func @scatter_complete(%x: tensor<4xf32>) -> (tensor<4xf32> {cleave.block = #cleave.sharding<@mesh, [[]]>, cleave.scatter_dim = 0 : i64}) {
  return %x : tensor<4xf32>
}

// -----

// expected-error@+1 {{tensor name 'w' of argument 1 is already used by argument 0}}
func.func @param_duplicate(%a: tensor<4xf32> {cleave.param = "w"}, %b: tensor<4xf32> {cleave.param = "w"}) {
  return
}

// -----

// expected-error@+1 {{tensor name 'x' of argument 1 is already used by argument 0}}
func.func @input_clashes_with_param(%a: tensor<4xf32> {cleave.param = "x"}, %b: tensor<4xi32> {cleave.input = "x"}) {
  return
}

// -----

// expected-error@+1 {{argument 0 can only be one of a parameter, an input and optimizer state}}
func.func @param_and_input(%a: tensor<4xf32> {cleave.param = "a", cleave.input = "b"}) {
  return
}

// -----

// expected-error@+1 {{unknown cleave argument attribute 'cleave.weight'}}
func.func @unknown_arg_attr(%a: tensor<4xf32> {cleave.weight = "a"}) {
  return
}

// -----

func.func @layer_not_layer_attr(%a: tensor<4xf32>) {
  // expected-error@+1 {{'cleave.layer' must be a #cleave.layer attribute, got 3 : i64}}
  %0 = cleave.add %a, %a {cleave.layer = 3 : i64} : tensor<4xf32>
  return
}

// -----

func.func @unknown_op_attr(%a: tensor<4xf32>) {
  // expected-error@+1 {{unknown cleave attribute 'cleave.phase'}}
  %0 = cleave.add %a, %a {cleave.phase = 1 : i64} : tensor<4xf32>
  return
}

// -----

func.func @layer_negative(%a: tensor<4xf32>) {
  // expected-error@+1 {{block index must be non-negative, got -1}}
  %0 = cleave.add %a, %a {cleave.layer = #cleave.layer<-1>} : tensor<4xf32>
  return
}

// -----

func.func @layer_keyword(%a: tensor<4xf32>) {
  // expected-error@+1 {{expected 'embed', 'head' or a block index, got 'tail'}}
  %0 = cleave.add %a, %a {cleave.layer = #cleave.layer<tail>} : tensor<4xf32>
  return
}

// -----

func.func @negative_stage(%a: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'cleave.stage' must be a non-negative integer}}
  %0 = cleave.exp %a {cleave.stage = -1 : i64} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// expected-error @+1 {{'cleave.block_stages' must be a function's non-decreasing array of non-negative stages}}
func.func @stages_out_of_order(%a: tensor<4xf32>) -> tensor<4xf32> attributes {cleave.block_stages = array<i64: 0, 1, 0>} {
  return %a : tensor<4xf32>
}

// -----

// expected-error @+1 {{'cleave.role' must be a function's #cleave.role}}
func.func @role_not_a_role() attributes {cleave.role = "step"} {
  return
}

// -----

func.func @role_on_an_op(%a: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'cleave.role' must be a function's #cleave.role}}
  %0 = cleave.exp %a {cleave.role = #cleave.role<step>} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// expected-error @+2 {{expected ::mlir::cleave::FunctionRole to be one of: forward, step, update, stage_forward, stage_backward}}
// expected-error @+1 {{failed to parse Cleave_FunctionRoleAttr parameter 'value'}}
func.func @role_unknown() attributes {cleave.role = #cleave.role<loss>} {
  return
}

// -----

// expected-error @+1 {{'cleave.input_role' must be a #cleave.input_role on an argument with 'cleave.input'}}
func.func @input_role_without_input(%w: tensor<4xf32> {cleave.param = "w", cleave.input_role = #cleave.input_role<tokens>}) {
  return
}

// -----

// expected-error @+1 {{argument 1 has input role 'targets', as argument 0 does}}
func.func @input_role_twice(%a: tensor<4xi32> {cleave.input = "a", cleave.input_role = #cleave.input_role<targets>},
                            %b: tensor<4xi32> {cleave.input = "b", cleave.input_role = #cleave.input_role<targets>}) {
  return
}

// -----

// expected-error @+1 {{'cleave.schedule' must be a module's #cleave.schedule}}
func.func @schedule_on_a_function() attributes {cleave.schedule = #cleave.schedule<"1f1b", ranks = 2, virtual_stages = 1, micro_batches = 4>} {
  return
}

// -----

// expected-error @+1 {{unknown pipeline schedule 'zigzag': expected gpipe, 1f1b or interleaved}}
module attributes {cleave.schedule = #cleave.schedule<"zigzag", ranks = 2, virtual_stages = 1, micro_batches = 4>} {
}

// -----

// expected-error @+1 {{a schedule's ranks, virtual stages and micro-batches must be at least 1}}
module attributes {cleave.schedule = #cleave.schedule<"1f1b", ranks = 0, virtual_stages = 1, micro_batches = 4>} {
}

// -----

// expected-error @+1 {{only the interleaved schedule runs several virtual stages per rank}}
module attributes {cleave.schedule = #cleave.schedule<"gpipe", ranks = 2, virtual_stages = 2, micro_batches = 4>} {
}

// -----

// expected-error @+1 {{plan: a mesh is axis=size pairs like dp=2,tp=2, got 'dp:2,pp=2,tp=2'}}
module attributes {cleave.plan = #cleave.plan<mesh = "dp:2,pp=2,tp=2", strategies = ["zero1", "pipeline", "megatron"], micro_batch_size = 4, micro_batches = 8, schedule = "interleaved", virtual_stages = 2, layers_per_stage = [6, 6], zero_stage = 1, recompute = true, precision = "bf16", padded_vocab = 50304, cluster = "h200-node", step_time_s = 0.5 : f64, peak_memory_bytes = 1.0e9 : f64, mfu = 0.25 : f64>} {
}

// -----

// expected-error @+1 {{plan: mesh axes are dp, tp and pp, got 'ep'}}
module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,pp=2,ep=2", strategies = ["zero1", "pipeline", "megatron"], micro_batch_size = 4, micro_batches = 8, schedule = "interleaved", virtual_stages = 2, layers_per_stage = [6, 6], zero_stage = 1, recompute = true, precision = "bf16", padded_vocab = 50304, cluster = "h200-node", step_time_s = 0.5 : f64, peak_memory_bytes = 1.0e9 : f64, mfu = 0.25 : f64>} {
}

// -----

// expected-error @+1 {{plan: 2 strategies for the 3 axes of mesh "dp=2,pp=2,tp=2"}}
module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,pp=2,tp=2", strategies = ["zero1", "pipeline"], micro_batch_size = 4, micro_batches = 8, schedule = "interleaved", virtual_stages = 2, layers_per_stage = [6, 6], zero_stage = 1, recompute = true, precision = "bf16", padded_vocab = 50304, cluster = "h200-node", step_time_s = 0.5 : f64, peak_memory_bytes = 1.0e9 : f64, mfu = 0.25 : f64>} {
}

// -----

// expected-error @+1 {{plan: the tp axis takes none, megatron, megatron-sp, search, got "dp"}}
module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,pp=2,tp=2", strategies = ["zero1", "pipeline", "dp"], micro_batch_size = 4, micro_batches = 8, schedule = "interleaved", virtual_stages = 2, layers_per_stage = [6, 6], zero_stage = 1, recompute = true, precision = "bf16", padded_vocab = 50304, cluster = "h200-node", step_time_s = 0.5 : f64, peak_memory_bytes = 1.0e9 : f64, mfu = 0.25 : f64>} {
}

// -----

// expected-error @+1 {{plan: zero_stage 2 disagrees with the dp strategy "zero1"}}
module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,pp=2,tp=2", strategies = ["zero1", "pipeline", "megatron"], micro_batch_size = 4, micro_batches = 8, schedule = "interleaved", virtual_stages = 2, layers_per_stage = [6, 6], zero_stage = 2, recompute = true, precision = "bf16", padded_vocab = 50304, cluster = "h200-node", step_time_s = 0.5 : f64, peak_memory_bytes = 1.0e9 : f64, mfu = 0.25 : f64>} {
}

// -----

// expected-error @+1 {{plan: micro_batches and virtual_stages must be at least 1, micro_batch_size at least 0}}
module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,pp=2,tp=2", strategies = ["zero1", "pipeline", "megatron"], micro_batch_size = 4, micro_batches = 0, schedule = "interleaved", virtual_stages = 2, layers_per_stage = [6, 6], zero_stage = 1, recompute = true, precision = "bf16", padded_vocab = 50304, cluster = "h200-node", step_time_s = 0.5 : f64, peak_memory_bytes = 1.0e9 : f64, mfu = 0.25 : f64>} {
}

// -----

// expected-error @+1 {{plan: unknown pipeline schedule 'zigzag': expected gpipe, 1f1b or interleaved}}
module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,pp=2,tp=2", strategies = ["zero1", "pipeline", "megatron"], micro_batch_size = 4, micro_batches = 8, schedule = "zigzag", virtual_stages = 2, layers_per_stage = [6, 6], zero_stage = 1, recompute = true, precision = "bf16", padded_vocab = 50304, cluster = "h200-node", step_time_s = 0.5 : f64, peak_memory_bytes = 1.0e9 : f64, mfu = 0.25 : f64>} {
}

// -----

// expected-error @+1 {{plan: only the interleaved schedule runs several virtual stages per rank}}
module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,pp=2,tp=2", strategies = ["zero1", "pipeline", "megatron"], micro_batch_size = 4, micro_batches = 8, schedule = "1f1b", virtual_stages = 2, layers_per_stage = [6, 6], zero_stage = 1, recompute = true, precision = "bf16", padded_vocab = 50304, cluster = "h200-node", step_time_s = 0.5 : f64, peak_memory_bytes = 1.0e9 : f64, mfu = 0.25 : f64>} {
}

// -----

// expected-error @+1 {{plan: layers_per_stage needs one count of at least 1 per pp rank (2 here), got [4, 4, 4]}}
module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,pp=2,tp=2", strategies = ["zero1", "pipeline", "megatron"], micro_batch_size = 4, micro_batches = 8, schedule = "interleaved", virtual_stages = 2, layers_per_stage = [4, 4, 4], zero_stage = 1, recompute = true, precision = "bf16", padded_vocab = 50304, cluster = "h200-node", step_time_s = 0.5 : f64, peak_memory_bytes = 1.0e9 : f64, mfu = 0.25 : f64>} {
}

// -----

// expected-error @+1 {{plan: precision must be f32, bf16 or f16, got 'fp8'}}
module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,pp=2,tp=2", strategies = ["zero1", "pipeline", "megatron"], micro_batch_size = 4, micro_batches = 8, schedule = "interleaved", virtual_stages = 2, layers_per_stage = [6, 6], zero_stage = 1, recompute = true, precision = "fp8", padded_vocab = 50304, cluster = "h200-node", step_time_s = 0.5 : f64, peak_memory_bytes = 1.0e9 : f64, mfu = 0.25 : f64>} {
}

// -----

// expected-error @+1 {{plan: a prediction needs the cluster it was priced on}}
module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,pp=2,tp=2", strategies = ["zero1", "pipeline", "megatron"], micro_batch_size = 4, micro_batches = 8, schedule = "interleaved", virtual_stages = 2, layers_per_stage = [6, 6], zero_stage = 1, recompute = true, precision = "bf16", padded_vocab = 50304, cluster = "", step_time_s = 0.5 : f64, peak_memory_bytes = 1.0e9 : f64, mfu = 0.25 : f64>} {
}

// -----

// expected-error @+1 {{plan: padded_vocab must be at least 0}}
module attributes {cleave.plan = #cleave.plan<mesh = "dp=2", strategies = ["dp"], padded_vocab = -1>} {
}

// -----

// expected-error @+1 {{plan: the tp axis of 2 devices needs a strategy}}
module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,tp=2", strategies = ["dp", "none"]>} {
}

// -----

// expected-error @+1 {{plan: a mesh is axis=size pairs like dp=2,tp=2, got ','}}
module attributes {cleave.plan = #cleave.plan<mesh = ",", strategies = []>} {
}

// -----

// expected-error @+1 {{plan: schedule, virtual_stages and layers_per_stage need a pp axis with the strategy pipeline}}
module attributes {cleave.plan = #cleave.plan<mesh = "dp=2", strategies = ["dp"], layers_per_stage = [3]>} {
}

// -----

// expected-error @+1 {{plan: schedule, virtual_stages and layers_per_stage need a pp axis with the strategy pipeline}}
module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,pp=1", strategies = ["dp", "none"], schedule = "interleaved", virtual_stages = 2>} {
}

// -----

// expected-error @+1 {{plan: layers_per_stage sets whole stages; virtual stages split the blocks evenly}}
module attributes {cleave.plan = #cleave.plan<mesh = "pp=2", strategies = ["pipeline"], schedule = "interleaved", virtual_stages = 2, layers_per_stage = [6, 6]>} {
}

// -----

// expected-error @+1 {{'cleave.plan' must be a module's #cleave.plan}}
module attributes {cleave.plan = {dp = 8 : i64}} {
}

// -----

// expected-error @+1 {{plan: ZeRO shards over a dp axis, which mesh "pp=2,tp=2" lacks}}
module attributes {cleave.plan = #cleave.plan<mesh = "pp=2,tp=2", strategies = ["pipeline", "megatron"], micro_batch_size = 4, micro_batches = 8, schedule = "1f1b", virtual_stages = 1, layers_per_stage = [6, 6], zero_stage = 1, recompute = false, precision = "bf16", padded_vocab = 50304, cluster = "h200-node", step_time_s = 0.5 : f64, peak_memory_bytes = 1.0e9 : f64, mfu = 0.25 : f64>} {
}

// -----

// expected-error @+1 {{argument 0 with input role 'tokens' must be an integer tensor}}
func.func @float_tokens(%t: tensor<2x4xf32> {cleave.input = "t", cleave.input_role = #cleave.input_role<tokens>}) {
  return
}

// -----

// expected-error @+1 {{'cleave.micro_batches' must be a function's micro-batch count (more than 1)}}
func.func @one_micro_batch() attributes {cleave.micro_batches = 1 : i64} {
  return
}

// -----

// expected-error @+1 {{argument 0 with input role 'learning_rate' must be a rank-0 float tensor}}
func.func @vector_learning_rate(%lr: tensor<2xf32> {cleave.input = "lr", cleave.input_role = #cleave.input_role<learning_rate>}) {
  return
}

// -----

// expected-error @+1 {{argument 0 with input role 'step_number' must be a rank-0 float tensor}}
func.func @integer_step_number(%step: tensor<i32> {cleave.input = "step", cleave.input_role = #cleave.input_role<step_number>}) {
  return
}

// -----

// expected-error @+1 {{'cleave.output_role' must be a #cleave.output_role on a result with 'cleave.output'}}
func.func @output_role_without_output(%a: tensor<f32>) -> (tensor<f32> {cleave.output_role = #cleave.output_role<loss>}) {
  return %a : tensor<f32>
}

// -----

// expected-error @+1 {{result 0 with output role 'loss' must be a rank-0 float tensor}}
func.func @vector_loss(%a: tensor<2xf32>) -> (tensor<2xf32> {cleave.output = "loss", cleave.output_role = #cleave.output_role<loss>}) {
  return %a : tensor<2xf32>
}

// -----

// expected-error @+1 {{result 1 has output role 'grad_norm', as result 0 does}}
func.func @grad_norm_twice(%a: tensor<f32>) -> (tensor<f32> {cleave.output = "a", cleave.output_role = #cleave.output_role<grad_norm>},
                                                tensor<f32> {cleave.output = "b", cleave.output_role = #cleave.output_role<grad_norm>}) {
  return %a, %a : tensor<f32>, tensor<f32>
}

// -----

// expected-error @+1 {{'cleave.init' must be a #cleave.init on an argument with 'cleave.param'}}
func.func @init_on_an_input(%x: tensor<2xf32> {cleave.input = "x", cleave.init = #cleave.init<zeros>}) {
  return
}

// -----

// expected-error @+1 {{#cleave.init<normal> needs a positive, finite standard deviation, not 0}}
func.func @normal_without_spread(%w: tensor<2xf32> {cleave.param = "w", cleave.init = #cleave.init<normal>}) {
  return
}

// -----

// expected-error @+1 {{#cleave.init<ones> takes no standard deviation}}
func.func @ones_with_spread(%w: tensor<2xf32> {cleave.param = "w", cleave.init = #cleave.init<ones, 0.5>}) {
  return
}

// -----

// expected-error @+1 {{argument 0 with input role 'gradient' must be a float tensor}}
func.func @integer_gradient_input(%g: tensor<4xi32> {cleave.input = "grad.w", cleave.input_role = #cleave.input_role<gradient>}) {
  return
}

// -----

// expected-error @+1 {{result 0 with output role 'gradient' must be a float tensor}}
func.func @integer_gradient_result(%a: tensor<4xi32>) -> (tensor<4xi32> {cleave.output = "grad.w", cleave.output_role = #cleave.output_role<gradient>}) {
  return %a : tensor<4xi32>
}

// -----

// expected-error @+1 {{plan: recompute_layers needs recompute}}
module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,pp=2", strategies = ["dp", "pipeline"], micro_batches = 4, recompute_layers = [1, 1]>} {
}

// -----

// expected-error @+1 {{plan: recompute_layers needs one count of at least 0, or one per stage (4 here), got [1, 1]}}
module attributes {cleave.plan = #cleave.plan<mesh = "pp=2", strategies = ["pipeline"], micro_batches = 4, schedule = "interleaved", virtual_stages = 2, recompute = true, recompute_layers = [1, 1]>} {
}

// -----

// expected-error @+1 {{plan: recompute_layers needs one count of at least 0, or one per stage (2 here), got [-1]}}
module attributes {cleave.plan = #cleave.plan<mesh = "pp=2", strategies = ["pipeline"], micro_batches = 4, recompute = true, recompute_layers = [-1]>} {
}

// -----

func.func @rope_scaling_order(%x: tensor<4x16xf32>) {
  // expected-error@+1 {{rope_scaling needs 0 < low_freq_factor < high_freq_factor, finite}}
  %0 = cleave.rotary %x {scaling = #cleave.rope_scaling<factor = 8.0, low_freq_factor = 4.0, high_freq_factor = 1.0, original_max_positions = 8192>} : tensor<4x16xf32>
  return
}

// -----

func.func @rope_scaling_factor(%x: tensor<4x16xf32>) {
  // expected-error@+1 {{rope_scaling factor must be positive and finite}}
  %0 = cleave.rotary %x {scaling = #cleave.rope_scaling<factor = 0.0, low_freq_factor = 1.0, high_freq_factor = 4.0, original_max_positions = 8192>} : tensor<4x16xf32>
  return
}

// -----

func.func @rope_scaling_positions(%x: tensor<4x16xf32>) {
  // expected-error@+1 {{rope_scaling original_max_positions must be positive}}
  %0 = cleave.rotary %x {scaling = #cleave.rope_scaling<factor = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0, original_max_positions = 0>} : tensor<4x16xf32>
  return
}
