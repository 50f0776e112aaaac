//! One row group of a Parquet file read in one piece, and its pages handed
//! to the Arrow decoder.
//!
//! `parquet` creates a codec for every column chunk it reads, and a ZSTD
//! codec creates a compression and a decompression context, each of which
//! asks the CPU for its features (`cpuid`, which exits to the hypervisor on
//! a virtual machine). A dataset of thousands of small partitions paid
//! that for every column chunk (6 % of a run's time over 2,525 files). Here
//! a ZSTD column chunk is read as if it were uncompressed, and its pages
//! are decompressed with one context per thread, reused.

use std::cell::RefCell;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, RowGroups};
use parquet::arrow::FieldLevels;
use parquet::basic::Compression;
use parquet::column::page::{Page, PageIterator, PageMetadata, PageReader};
use parquet::errors::{ParquetError, Result as PqResult};
use parquet::file::metadata::{ParquetMetaData, RowGroupMetaData};
use parquet::file::serialized_reader::SerializedPageReader;

use crate::error::{Error, Result};

/// The bytes of one row group of a Parquet file, read at once, as a reader
/// of the whole file (offsets are the file's).
#[derive(Debug, Clone)]
pub(crate) struct Window {
    /// File offset of `bytes`.
    offset: u64,
    bytes: bytes::Bytes,
}

impl Window {
    /// Read row group `rg`: from the first to the last column chunk under
    /// the root columns `roots` (with their dictionary pages).
    pub(crate) fn read(
        path: &Path,
        metadata: &ParquetMetaData,
        rg: usize,
        roots: &[usize],
    ) -> Result<Window> {
        let schema = metadata.file_metadata().schema_descr();
        use std::io::{Read, Seek, SeekFrom};
        let (mut lo, mut hi) = (u64::MAX, 0u64);
        for (i, c) in metadata.row_group(rg).columns().iter().enumerate() {
            if !roots.contains(&schema.get_column_root_idx(i)) {
                continue;
            }
            let (start, len) = c.byte_range();
            lo = lo.min(start);
            hi = hi.max(start.saturating_add(len));
        }
        if lo >= hi {
            return Ok(Window {
                offset: 0,
                bytes: bytes::Bytes::new(),
            });
        }
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len =
            usize::try_from(hi - lo).map_err(|_| Error::format(path, "row group too large"))?;
        let mut buf = vec![0u8; len];
        file.seek(SeekFrom::Start(lo))
            .and_then(|_| file.read_exact(&mut buf))
            .map_err(|e| Error::io(path, e))?;
        Ok(Window {
            offset: lo,
            bytes: buf.into(),
        })
    }

    fn at(&self, start: u64, len: Option<usize>) -> PqResult<bytes::Bytes> {
        let from = start
            .checked_sub(self.offset)
            .and_then(|s| usize::try_from(s).ok())
            .filter(|s| *s <= self.bytes.len());
        let to = from.and_then(|f| match len {
            Some(l) => f.checked_add(l).filter(|t| *t <= self.bytes.len()),
            None => Some(self.bytes.len()),
        });
        match (from, to) {
            (Some(f), Some(t)) => Ok(self.bytes.slice(f..t)),
            _ => Err(ParquetError::EOF(format!(
                "bytes {start}+{len:?} outside the row group read"
            ))),
        }
    }
}

impl parquet::file::reader::Length for Window {
    fn len(&self) -> u64 {
        self.offset + self.bytes.len() as u64
    }
}

impl parquet::file::reader::ChunkReader for Window {
    type T = bytes::buf::Reader<bytes::Bytes>;

    fn get_read(&self, start: u64) -> PqResult<Self::T> {
        use bytes::Buf;
        Ok(self.at(start, None)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> PqResult<bytes::Bytes> {
        self.at(start, Some(length))
    }
}

/// Row group `rg` of a file, its bytes in `window`: the [`RowGroups`] the
/// Arrow decoder reads.
struct OneGroup<'a> {
    window: Arc<Window>,
    metadata: &'a ParquetMetaData,
    rg: usize,
}

impl RowGroups for OneGroup<'_> {
    fn num_rows(&self) -> usize {
        usize::try_from(self.metadata.row_group(self.rg).num_rows()).unwrap_or(0)
    }

    fn column_chunks(&self, i: usize) -> PqResult<Box<dyn PageIterator>> {
        let group = self.metadata.row_group(self.rg);
        let chunk = group
            .columns()
            .get(i)
            .ok_or_else(|| ParquetError::General(format!("no column chunk {i}")))?;
        let rows = usize::try_from(group.num_rows()).unwrap_or(0);
        let reader: Box<dyn PageReader> = if matches!(chunk.compression(), Compression::ZSTD(_)) {
            // Read as stored; the pages are decompressed by `Unzstd`.
            let stored = chunk
                .clone()
                .into_builder()
                .set_compression(Compression::UNCOMPRESSED)
                .build()?;
            Box::new(Unzstd(SerializedPageReader::new(
                self.window.clone(),
                &stored,
                rows,
                None,
            )?))
        } else {
            Box::new(SerializedPageReader::new(
                self.window.clone(),
                chunk,
                rows,
                None,
            )?)
        };
        Ok(Box::new(Once(Some(reader))))
    }

    fn row_groups(&self) -> Box<dyn Iterator<Item = &RowGroupMetaData> + '_> {
        Box::new(std::iter::once(self.metadata.row_group(self.rg)))
    }

    fn metadata(&self) -> &ParquetMetaData {
        self.metadata
    }
}

/// The page reader of the one row group.
struct Once(Option<Box<dyn PageReader>>);

impl Iterator for Once {
    type Item = PqResult<Box<dyn PageReader>>;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.take().map(Ok)
    }
}

impl PageIterator for Once {}

/// The pages of a ZSTD column chunk read as stored, decompressed here.
struct Unzstd<R>(R);

thread_local! {
    /// This thread's decompression context, created once.
    static DCTX: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// `buf` decompressed (one or more ZSTD frames).
fn unzstd(buf: &[u8]) -> PqResult<bytes::Bytes> {
    if buf.is_empty() {
        return Ok(bytes::Bytes::new());
    }
    let err = |e: std::io::Error| ParquetError::External(Box::new(e));
    let size = zstd::zstd_safe::get_frame_content_size(buf).ok().flatten();
    if let Some(size) = size.and_then(|s| usize::try_from(s).ok()) {
        let mut out = Vec::with_capacity(size);
        let done = DCTX.with(|d| -> PqResult<bool> {
            let mut d = d.borrow_mut();
            let ctx = match d.as_mut() {
                Some(ctx) => ctx,
                None => d.insert(zstd::bulk::Decompressor::new().map_err(err)?),
            };
            // A page of several frames does not fit: read as a stream below.
            Ok(ctx.decompress_to_buffer(buf, &mut out).is_ok() && out.len() == size)
        })?;
        if done && zstd::zstd_safe::find_frame_compressed_size(buf).ok() == Some(buf.len()) {
            return Ok(out.into());
        }
    }
    zstd::stream::decode_all(buf).map(Into::into).map_err(err)
}

impl<R: PageReader> Iterator for Unzstd<R> {
    type Item = PqResult<Page>;
    fn next(&mut self) -> Option<Self::Item> {
        self.get_next_page().transpose()
    }
}

impl<R: PageReader> PageReader for Unzstd<R> {
    fn get_next_page(&mut self) -> PqResult<Option<Page>> {
        let Some(mut page) = self.0.get_next_page()? else {
            return Ok(None);
        };
        match &mut page {
            Page::DictionaryPage { buf, .. } | Page::DataPage { buf, .. } => *buf = unzstd(buf)?,
            Page::DataPageV2 {
                buf,
                def_levels_byte_len,
                rep_levels_byte_len,
                is_compressed,
                ..
            } if *is_compressed => {
                // The levels lead the page, uncompressed.
                let levels = (*def_levels_byte_len as usize)
                    .checked_add(*rep_levels_byte_len as usize)
                    .filter(|n| *n <= buf.len())
                    .ok_or_else(|| ParquetError::General("invalid page header".into()))?;
                let values = unzstd(&buf[levels..])?;
                let mut all = Vec::with_capacity(levels + values.len());
                all.extend_from_slice(&buf[..levels]);
                all.extend_from_slice(&values);
                *buf = all.into();
                *is_compressed = false;
            }
            Page::DataPageV2 { .. } => {}
        }
        Ok(Some(page))
    }

    fn peek_next_page(&mut self) -> PqResult<Option<PageMetadata>> {
        self.0.peek_next_page()
    }

    fn skip_next_page(&mut self) -> PqResult<()> {
        self.0.skip_next_page()
    }

    fn at_record_boundary(&mut self) -> PqResult<bool> {
        self.0.at_record_boundary()
    }
}

/// A record batch reader of row group `rg`, its bytes in `window`, for the
/// columns of `levels`, in batches of at most `batch_size` rows.
pub(crate) fn row_group_reader(
    window: Window,
    metadata: &ParquetMetaData,
    rg: usize,
    levels: &FieldLevels,
    batch_size: usize,
) -> PqResult<ParquetRecordBatchReader> {
    let group = OneGroup {
        window: Arc::new(window),
        metadata,
        rg,
    };
    // As `parquet`'s builder does: the decoders reserve a batch's room.
    let batch_size = batch_size.min(group.num_rows()).max(1);
    ParquetRecordBatchReader::try_new_with_row_groups(levels, &group, batch_size, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, BinaryArray, Float64Array, Int64Array, RecordBatch, StringArray};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::arrow::{ArrowWriter, ProjectionMask};
    use parquet::file::properties::{WriterProperties, WriterVersion};

    fn batch(n: usize) -> RecordBatch {
        let ids: Int64Array = (0..n as i64)
            .map(|i| (i % 7 != 3).then_some(i * 31))
            .collect();
        let names: StringArray = (0..n)
            .map(|i| (i % 5 != 0).then(|| format!("commune {}", i % 13)))
            .collect();
        let blobs: Vec<Vec<u8>> = (0..n)
            .map(|i| (0..(i % 40 + 1)).map(|k| (i * 7 + k) as u8).collect())
            .collect();
        let wkb = BinaryArray::from_iter_values(blobs.iter());
        let values: Float64Array = (0..n).map(|i| Some(i as f64 * 0.37)).collect();
        RecordBatch::try_from_iter([
            ("id", Arc::new(ids) as ArrayRef),
            ("name", Arc::new(names) as ArrayRef),
            ("geometry", Arc::new(wkb) as ArrayRef),
            ("value", Arc::new(values) as ArrayRef),
        ])
        .unwrap()
    }

    /// Every row group, projected, read through `row_group_reader` equals
    /// what `parquet`'s own reader gives, whatever the codec, page version,
    /// dictionary and page sizes.
    #[test]
    fn pages_read_as_parquet_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let data = batch(2_500);
        let codecs = [
            Compression::ZSTD(parquet::basic::ZstdLevel::try_new(3).unwrap()),
            Compression::SNAPPY,
            Compression::UNCOMPRESSED,
        ];
        let mut checked = 0;
        for (k, codec) in codecs.into_iter().enumerate() {
            for version in [WriterVersion::PARQUET_1_0, WriterVersion::PARQUET_2_0] {
                for dictionary in [true, false] {
                    let path = dir
                        .path()
                        .join(format!("t{k}{version:?}{dictionary}.parquet"));
                    let props = WriterProperties::builder()
                        .set_compression(codec)
                        .set_writer_version(version)
                        .set_dictionary_enabled(dictionary)
                        .set_data_page_row_count_limit(97)
                        .set_write_batch_size(97)
                        .set_max_row_group_row_count(Some(900))
                        .build();
                    let file = File::create(&path).unwrap();
                    let mut w = ArrowWriter::try_new(file, data.schema(), Some(props)).unwrap();
                    w.write(&data).unwrap();
                    w.close().unwrap();
                    let file = File::open(&path).unwrap();
                    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
                    let metadata = builder.metadata().clone();
                    let schema = builder.schema().clone();
                    assert!(metadata.num_row_groups() > 1);
                    for roots in [vec![0, 1, 2, 3], vec![2], vec![1, 3]] {
                        let descr = metadata.file_metadata().schema_descr();
                        let mask = ProjectionMask::roots(descr, roots.iter().copied());
                        let levels = parquet::arrow::parquet_to_arrow_field_levels(
                            descr,
                            mask.clone(),
                            Some(schema.fields()),
                        )
                        .unwrap();
                        for rg in 0..metadata.num_row_groups() {
                            let window = Window::read(&path, &metadata, rg, &roots).unwrap();
                            let ours: Vec<RecordBatch> =
                                row_group_reader(window, &metadata, rg, &levels, 128)
                                    .unwrap()
                                    .collect::<std::result::Result<_, _>>()
                                    .unwrap();
                            let theirs: Vec<RecordBatch> =
                                ParquetRecordBatchReaderBuilder::try_new(
                                    File::open(&path).unwrap(),
                                )
                                .unwrap()
                                .with_projection(mask.clone())
                                .with_row_groups(vec![rg])
                                .with_batch_size(128)
                                .build()
                                .unwrap()
                                .collect::<std::result::Result<_, _>>()
                                .unwrap();
                            assert_eq!(ours, theirs, "{path:?} row group {rg} columns {roots:?}");
                            checked += ours.iter().map(RecordBatch::num_rows).sum::<usize>();
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 3 * 2 * 2 * 3 * 2_500);
    }

    /// Pages of several frames, or whose frame does not state its size,
    /// are decompressed whole.
    #[test]
    fn frames_without_size_or_several() {
        let a: Vec<u8> = (0..5_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let b: Vec<u8> = (0..3_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let mut two = zstd::bulk::compress(&a, 3).unwrap();
        two.extend(zstd::bulk::compress(&b, 3).unwrap());
        let mut whole = a.clone();
        whole.extend(&b);
        assert_eq!(unzstd(&two).unwrap().as_ref(), whole.as_slice());
        // A streaming encoder does not know the size in advance.
        let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
        std::io::Write::write_all(&mut enc, &a).unwrap();
        let streamed = enc.finish().unwrap();
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&streamed)
                .ok()
                .flatten(),
            None
        );
        assert_eq!(unzstd(&streamed).unwrap().as_ref(), a.as_slice());
        assert!(unzstd(b"not zstd").is_err());
        assert!(unzstd(&[]).unwrap().is_empty());
    }
}
