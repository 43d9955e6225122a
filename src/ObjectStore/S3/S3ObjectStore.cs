using System.Globalization;
using System.Net;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;

namespace Storage.ObjectStore;

/// <summary>
/// Objects in an S3 bucket (AWS, MinIO, s3rver), path-style addressed. The CRC-32C of each object is
/// its user metadata <c>x-amz-meta-crc32c</c> (8 hex digits). Objects up to
/// <see cref="S3ObjectStoreOptions.PartSize"/> go in one PUT, larger ones in a multipart upload
/// (aborted if the put fails). Every request is retried on transient errors (<see cref="S3Retry"/>).
/// </summary>
public sealed class S3ObjectStore : IObjectStore
{
    public const string ChecksumMetadata = "x-amz-meta-crc32c";

    private readonly S3ObjectStoreOptions _options;
    private readonly AmazonS3Client _client;
    private readonly ResiliencePipeline _retry;

    public S3ObjectStore(S3ObjectStoreOptions options, ILogger? logger = null)
    {
        options.Validate();
        _options = options;
        _client = CreateClient(options);
        _retry = S3Retry.Pipeline(options, logger ?? NullLogger.Instance);
    }

    /// <summary>A raw SDK client for the same server (bucket setup, tests).</summary>
    public static AmazonS3Client CreateClient(S3ObjectStoreOptions options)
    {
        var client = new AmazonS3Client(new BasicAWSCredentials(options.AccessKey, options.SecretKey), new AmazonS3Config
        {
            ServiceURL = options.ServiceUrl,
            AuthenticationRegion = options.Region,
            ForcePathStyle = true, // bucket in the path: works with MinIO, s3rver and AWS alike
            MaxErrorRetry = 0, // S3Retry retries
            Timeout = options.RequestTimeout,
            // The SDK's optional flexible checksums (aws-chunked trailers) are not understood by every
            // S3-compatible server; integrity is our own CRC-32C.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        });
        client.BeforeRequestEvent += EncodeCopySourcePerSegment;
        return client;
    }

    /// <summary>
    /// The SDK escapes the '/' in a copy source ("bucket%2Fkey"); AWS accepts that and also plain
    /// '/' (what boto3 and the AWS CLI send), but some S3-compatible servers (s3rver) decode only
    /// the latter. This runs after marshalling and before signing.
    /// </summary>
    private static void EncodeCopySourcePerSegment(object sender, RequestEventArgs e)
    {
        const string header = "x-amz-copy-source";
        if (e is WebServiceRequestEventArgs { Headers: var headers } && headers.TryGetValue(header, out var source))
            headers[header] = string.Join('/', Uri.UnescapeDataString(source).Split('/').Select(Uri.EscapeDataString));
    }

    /// <summary>Creates the bucket unless it exists (for local servers and tests).</summary>
    public async Task EnsureBucketAsync(CancellationToken ct = default)
    {
        try
        {
            await RetryAsync(c => _client.PutBucketAsync(new PutBucketRequest { BucketName = _options.Bucket }, c), ct);
        }
        catch (AmazonS3Exception e) when (e.ErrorCode is "BucketAlreadyOwnedByYou" or "BucketAlreadyExists") { }
    }

    public async Task PutAsync(string key, Stream content, CancellationToken ct = default)
    {
        ObjectKey.Validate(key);
        var parts = new PartReader(content, _options.PartSize);
        var (first, isLast) = await parts.NextAsync(ct);
        if (isLast)
        {
            await RetryAsync(c => _client.PutObjectAsync(new PutObjectRequest
            {
                BucketName = _options.Bucket,
                Key = key,
                InputStream = ReadOnlyStream(first),
                UseChunkEncoding = false, // s3rver stores aws-chunked bodies undecoded
                Metadata = { [ChecksumMetadata] = Hex(parts.Crc) },
            }, c), ct);
            return;
        }
        await PutMultipartAsync(key, parts, first, ct);
    }

    private async Task PutMultipartAsync(string key, PartReader parts, ReadOnlyMemory<byte> first, CancellationToken ct)
    {
        var upload = await RetryAsync(c => _client.InitiateMultipartUploadAsync(
            new InitiateMultipartUploadRequest { BucketName = _options.Bucket, Key = key }, c), ct);
        string etag;
        try
        {
            var etags = new List<PartETag>();
            var (part, isLast) = (first, false);
            while (true)
            {
                int number = etags.Count + 1;
                var body = part;
                var uploaded = await RetryAsync(c => _client.UploadPartAsync(new UploadPartRequest
                {
                    BucketName = _options.Bucket,
                    Key = key,
                    UploadId = upload.UploadId,
                    PartNumber = number,
                    InputStream = ReadOnlyStream(body),
                    UseChunkEncoding = false,
                }, c), ct);
                etags.Add(new PartETag(number, uploaded.ETag));
                if (isLast) break;
                (part, isLast) = await parts.NextAsync(ct);
            }
            var completed = await RetryAsync(c => _client.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
            {
                BucketName = _options.Bucket,
                Key = key,
                UploadId = upload.UploadId,
                PartETags = etags,
            }, c), ct);
            etag = completed.ETag;
        }
        catch
        {
            // Parts of an unfinished upload are kept (and billed) by S3 until aborted.
            try { await _client.AbortMultipartUploadAsync(_options.Bucket, key, upload.UploadId, CancellationToken.None); }
            catch (Exception) { } // the put's own error is the one to report
            throw;
        }

        // S3 takes metadata only when an upload begins, before the content (and so its checksum) is
        // known: it is set by a server-side copy of the object onto itself, which must find the
        // content uploaded here (ETag). Until then a reader finds no checksum and reports the object
        // corrupt, never unchecked content.
        await RetryAsync(c => _client.CopyObjectAsync(new CopyObjectRequest
        {
            SourceBucket = _options.Bucket,
            SourceKey = key,
            DestinationBucket = _options.Bucket,
            DestinationKey = key,
            ETagToMatch = etag,
            MetadataDirective = S3MetadataDirective.REPLACE,
            Metadata = { [ChecksumMetadata] = Hex(parts.Crc) },
        }, c), ct);
    }

    public async Task<Stream> GetAsync(string key, CancellationToken ct = default)
    {
        ObjectKey.Validate(key);
        var response = await GetObjectAsync(new GetObjectRequest { BucketName = _options.Bucket, Key = key }, ct);
        try
        {
            var stored = response.Metadata[ChecksumMetadata];
            if (!uint.TryParse(stored, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out uint crc))
                throw new ObjectCorruptException(key, stored is null or "" ? $"it has no {ChecksumMetadata} metadata (not written by this store, or its put did not finish)" : $"its {ChecksumMetadata} metadata '{stored}' is not a CRC");
            return new VerifyingReadStream(response.ResponseStream, response.ContentLength, key, crc, owner: response);
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    public async Task<Stream> GetRangeAsync(string key, long offset, long length, CancellationToken ct = default)
    {
        ObjectKey.Validate(key);
        ObjectKey.ValidateRange(offset, length);
        if (length == 0)
            return await HeadAsync(key, ct) is null ? throw new ObjectNotFoundException(key) : Stream.Null;
        GetObjectResponse response;
        try
        {
            response = await GetObjectAsync(new GetObjectRequest
            {
                BucketName = _options.Bucket,
                Key = key,
                ByteRange = new ByteRange(offset, offset + length - 1),
            }, ct);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            return Stream.Null; // the object exists and ends at or before offset
        }
        if (response.ContentLength > length)
        {
            response.Dispose();
            throw new ObjectCorruptException(key, $"the server sent {response.ContentLength} bytes for a range of {length}");
        }
        return new VerifyingReadStream(response.ResponseStream, response.ContentLength, key, expectedCrc: null, owner: response);
    }

    public async Task<ObjectInfo?> HeadAsync(string key, CancellationToken ct = default)
    {
        ObjectKey.Validate(key);
        try
        {
            var head = await RetryAsync(c => _client.GetObjectMetadataAsync(_options.Bucket, key, c), ct);
            return new ObjectInfo(key, head.ContentLength, head.LastModified ?? DateTime.UnixEpoch);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound && e.ErrorCode != "NoSuchBucket")
        {
            return null;
        }
    }

    public async IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct = default)
    {
        ObjectKey.ValidatePrefix(prefix);
        string? continuation = null;
        do
        {
            var page = await RetryAsync(c => _client.ListObjectsV2Async(new ListObjectsV2Request
            {
                BucketName = _options.Bucket,
                Prefix = prefix,
                MaxKeys = _options.ListPageSize,
                ContinuationToken = continuation,
            }, c), ct);
            foreach (var o in page.S3Objects ?? [])
                yield return new ObjectInfo(o.Key, o.Size ?? 0, o.LastModified ?? DateTime.UnixEpoch);
            continuation = page.IsTruncated == true ? page.NextContinuationToken : null;
        } while (continuation is not null);
    }

    public async Task DeleteAsync(string key, CancellationToken ct = default)
    {
        ObjectKey.Validate(key);
        await RetryAsync(c => _client.DeleteObjectAsync(_options.Bucket, key, c), ct);
    }

    public void Dispose() => _client.Dispose();

    private async Task<GetObjectResponse> GetObjectAsync(GetObjectRequest request, CancellationToken ct)
    {
        try
        {
            return await RetryAsync(c => _client.GetObjectAsync(request, c), ct);
        }
        catch (AmazonS3Exception e) when (e.ErrorCode == "NoSuchKey")
        {
            throw new ObjectNotFoundException(request.Key);
        }
    }

    private Task<T> RetryAsync<T>(Func<CancellationToken, Task<T>> request, CancellationToken ct) =>
        _retry.ExecuteAsync(async c => await request(c), ct).AsTask();

    private static string Hex(uint crc) => crc.ToString("X8", CultureInfo.InvariantCulture);

    /// <summary>A fresh stream over a buffered part for each attempt (the SDK disposes what it sends).</summary>
    private static MemoryStream ReadOnlyStream(ReadOnlyMemory<byte> data) =>
        MemoryMarshal.TryGetArray(data, out var segment)
            ? new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false)
            : new MemoryStream(data.ToArray(), writable: false);
}
