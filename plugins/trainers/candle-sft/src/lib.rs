//! `candle-sft`: the supervised fine-tuning trainer plugin. It trains a `valley-lm` decoder (the
//! small from-scratch student by default, or a Hugging Face checkpoint) on the ordered training
//! file the host wrote, streams loss, learning rate, gradient norm, tokens/s and tokens seen every
//! step, and returns the final checkpoint in the Hugging Face layout.

pub mod data;
pub mod template_setting;
pub mod tokenizer_setting;
pub mod train;

use std::path::Path;

use valley_plugin_api::prelude::*;

pub use train::{train, Ended, SftConfig, TrainSummary};

/// The trainer plugin.
pub struct CandleSft(SftConfig);

impl TrainerPlugin for CandleSft {
    type Config = SftConfig;
    const NAME: &'static str = "candle-sft";
    const DESCRIPTION: &'static str =
        "Supervised fine-tuning with candle (CPU or CUDA, f32 or bf16 mixed precision), exact resume.";
    const RESUMES: bool = true;

    fn new(config: SftConfig) -> Result<Self, PluginError> {
        config
            .chat_template
            .parse::<template_setting::TemplateSetting>()?;
        Ok(Self(config))
    }

    fn train(&self, job: &TrainJob, host: &Host<'_>) -> Result<TrainOutcome, PluginError> {
        let out = Path::new(job.output_dir.as_str());
        let resume = job
            .resume_from
            .as_ref()
            .map(|p| Path::new(p.as_str()).to_path_buf())
            .into_option();
        let ended = train::train(
            &self.0,
            Path::new(job.train_file.as_str()),
            out,
            resume.as_deref(),
            host,
        )?;
        Ok(match ended {
            Ended::Finished(summary) => TrainOutcome::finished(
                summary.checkpoint.display().to_string(),
                serde_json::to_value(&summary).map_err(PluginError::failed)?,
            ),
            Ended::Interrupted {
                step,
                checkpoint,
                resumed_from,
            } => TrainOutcome::interrupted(
                checkpoint.display().to_string(),
                step,
                serde_json::json!({ "steps": step, "resumed_from": resumed_from }),
            ),
        })
    }
}

valley_plugin_api::export_trainer!(CandleSft);
