# frozen_string_literal: true

# Funcd::LazyGems in a Ruby started as funcd-ruby starts it (--disable-gems): a handler that
# needs no gem never loads RubyGems, and one that does finds its gems as if RubyGems had been
# there from the start. Each case runs in a fresh `ruby`, since RubyGems cannot be unloaded.

require 'minitest/autorun'
require 'rbconfig'
require 'fileutils'
require 'tmpdir'

class LazyGemsTest < Minitest::Test
  GLUE = File.expand_path('../funcd/host.rb', __dir__)

  # Runs `script` after the glue in `ruby --disable-gems` with GEM_HOME holding one gem,
  # `lazygem` 1.2.0; returns its output (stdout and stderr).
  def run_glue(script)
    Dir.mktmpdir do |home|
      Dir.mkdir(File.join(home, 'specifications'))
      File.write(File.join(home, 'specifications', 'lazygem-1.2.0.gemspec'), <<~SPEC)
        Gem::Specification.new do |spec|
          spec.name = 'lazygem'
          spec.version = '1.2.0'
          spec.summary = 'found only through RubyGems'
          spec.authors = ['funcd']
          spec.files = ['lib/lazygem.rb']
        end
      SPEC
      FileUtils.mkdir_p(File.join(home, 'gems', 'lazygem-1.2.0', 'lib'))
      File.write(File.join(home, 'gems', 'lazygem-1.2.0', 'lib', 'lazygem.rb'), "module Lazygem; ANSWER = 42; end\n")
      environment = { 'GEM_HOME' => home, 'GEM_PATH' => nil, 'RUBYOPT' => nil }
      argv = [RbConfig.ruby, '--disable-gems', '-e', "require #{GLUE.dump}\n#{script}"]
      IO.popen(environment, argv, err: %i[child out], &:read)
    end
  end

  LOADED = 'print Funcd::LazyGems.loaded?'

  def test_the_glue_and_a_rack_request_leave_rubygems_out
    output = run_glue("require 'json'; require 'stringio'; print Funcd.request_class, ' '; #{LOADED}")
    assert_equal 'Funcd::RackRequest false', output
  end

  def test_the_constants_rubygems_brings_are_there_without_it
    script = "print [RbConfig::CONFIG['ruby_version'].class, CROSS_COMPILING, Monitor.new.class, " \
             "MonitorMixin.class, DidYouMean.class, ErrorHighlight.class, Funcd::LazyGems.loaded?].inspect"
    assert_equal '[String, nil, Monitor, Module, Module, Module, false]', run_glue(script)
  end

  def test_a_gem_only_rubygems_finds_is_required
    assert_equal '42 true', run_glue("require 'lazygem'; print Lazygem::ANSWER, ' '; #{LOADED}")
  end

  def test_threads_that_need_rubygems_at_once_all_get_their_gem
    script = "print 8.times.map { Thread.new { require 'lazygem'; Lazygem::ANSWER } }.map(&:value).inspect"
    assert_equal '[42, 42, 42, 42, 42, 42, 42, 42]', run_glue(script)
  end

  def test_rubygems_loaded_some_other_way_still_finds_gems_and_reports_missing_files
    script = "Kernel.require 'rubygems'; require 'lazygem'\n" \
             "begin; require 'no_such_library'; rescue LoadError => e; print Lazygem::ANSWER, ' ', e.path; end"
    assert_equal '42 no_such_library', run_glue(script)
  end

  def test_naming_gem_loads_rubygems
    assert_equal 'true true', run_glue("print Gem::Version.new('1.10') > Gem::Version.new('1.9'), ' '; #{LOADED}")
  end

  def test_kernel_gem_activates_a_gem
    assert_equal '42', run_glue("gem 'lazygem', '~> 1.2'; require 'lazygem'; print Lazygem::ANSWER")
  end

  def test_an_explicit_require_of_rubygems_loads_it_once
    assert_equal '[true, false, true]', run_glue("print [require('rubygems'), require('rubygems'), Funcd::LazyGems.loaded?]")
  end

  def test_a_missing_library_still_raises_load_error_naming_it
    script = "begin; require 'no_such_library'; rescue LoadError => e; print e.message, ' ', e.path; end"
    assert_equal 'cannot load such file -- no_such_library no_such_library', run_glue(script)
  end

  def test_rubygems_wraps_rubys_own_require_not_the_hook
    script = "require 'rubygems'; print Kernel.instance_method(:gem_original_require).source_location.inspect"
    assert_equal 'nil', run_glue(script)
  end

  def test_formatted_errors_carry_did_you_mean_and_error_highlight
    script = "def helper_value = 1\nbegin\n  helper_valeu\nrescue NameError => e\n  print Funcd::LazyGems.full_message(e)\nend"
    output = run_glue(script)
    assert_includes output, 'Did you mean?  helper_value'
    assert_includes output, '^^^^^^^^^^^^'
  end
end
