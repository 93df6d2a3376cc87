//! `listen --mic` (feature `mic`): the default input device through cpal, at its own rate
//! and channel count, mixed to mono and handed over a bounded channel.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use anyhow::Context;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

/// A running capture: keep it alive while reading; dropping it stops the device.
pub struct Microphone {
    _stream: cpal::Stream,
    /// The device's sample rate.
    pub sample_rate: u32,
    /// Mono blocks as the device delivers them.
    pub blocks: Receiver<Vec<f32>>,
}

/// Starts capturing from the default input device.
pub fn open() -> anyhow::Result<Microphone> {
    let device = cpal::default_host()
        .default_input_device()
        .context("no default input device")?;
    let supported = device
        .default_input_config()
        .context("reading the input device's configuration")?;
    let channels = usize::from(supported.channels()).max(1);
    let sample_rate = supported.sample_rate();
    let format = supported.sample_format();
    let config: cpal::StreamConfig = supported.into();
    // About 6 s of 100 ms blocks: a listener that falls behind drops blocks, not the device.
    let (sender, blocks) = sync_channel::<Vec<f32>>(64);
    let on_error = |error| eprintln!("microphone: {error}");
    let stream = match format {
        cpal::SampleFormat::F32 => device.build_input_stream::<f32, _, _>(
            config,
            move |data: &[f32], _: &_| send(&sender, data, channels, |x| x),
            on_error,
            None,
        ),
        cpal::SampleFormat::I16 => device.build_input_stream::<i16, _, _>(
            config,
            move |data: &[i16], _: &_| send(&sender, data, channels, |x| f32::from(x) / 32768.0),
            on_error,
            None,
        ),
        other => anyhow::bail!("the input device gives {other:?} samples; f32 and i16 are read"),
    }
    .context("opening the input stream")?;
    stream.play().context("starting the input stream")?;
    Ok(Microphone {
        _stream: stream,
        sample_rate,
        blocks,
    })
}

/// Mixes interleaved `data` to mono and sends it without blocking the audio thread.
fn send<T: Copy>(sender: &SyncSender<Vec<f32>>, data: &[T], channels: usize, value: fn(T) -> f32) {
    let mono = data
        .chunks(channels)
        .map(|frame| frame.iter().map(|&x| value(x)).sum::<f32>() / frame.len() as f32)
        .collect();
    let _ = sender.try_send(mono);
}
